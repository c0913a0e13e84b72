"""Google connection bodies on the wire: the authorize request and answer, the connection read-back."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel, SafeStr


class AuthorizeRequest(RequestModel):
    login_hint: Annotated[SafeStr, Field(max_length=320, description="Pre-selects this Google account")] | None = None


class AuthorizeResponse(ResponseModel):
    authorization_url: str = Field(description="Send the expert's browser here; Google redirects back to the callback")


class GoogleConnection(ResponseModel):
    """A connection as ``GET /v1/calendar-connections`` lists it: no secret in it."""

    id: str
    provider: str
    status: str
    account: str | None = None
    last_synced_at: str | None = None
    last_error: str | None = None
    busy_calendars: list[str]
    destination_calendar: str | None = None
    created_at: str | None = None
