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


class Profile(ResponseModel):
    id: str
    email: str | None
    display_name: str | None
    timezone: str | None
