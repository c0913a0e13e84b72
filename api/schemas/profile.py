"""The caller's profile (``/v1/me``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel, SafeStr


class ProfileUpdate(RequestModel):
    """Fields left out (or null) keep their current value."""

    email: Annotated[SafeStr, Field(max_length=254, description="local@domain, printable ASCII")] | None = None
    display_name: Annotated[
        SafeStr, Field(max_length=200, description="No control characters or line breaks")
    ] | None = None
    timezone: Annotated[SafeStr, Field(max_length=64)] | None = None
    headline: Annotated[
        SafeStr, Field(max_length=200, description="A one-line description shown in the experts directory")
    ] | None = None
    bio: Annotated[SafeStr, Field(max_length=4000, description="The expert's public profile text")] | None = None


class Profile(ResponseModel):
    id: str
    email: str | None
    display_name: str | None
    timezone: str | None
    headline: str | None = None
    bio: str | None = None


class ExpertProfile(ResponseModel):
    """An expert's public profile (docs/api.md#experts): no e-mail address, nothing private."""

    id: str
    display_name: str | None
    headline: str | None
    bio: str | None
    timezone: str
    hourly_rate_cents: int
    currency: str
    min_booking_duration_minutes: int
    max_booking_duration_minutes: int


class ExpertPage(ResponseModel):
    items: list[ExpertProfile]
    next_cursor: str | None
