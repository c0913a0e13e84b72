"""Calendar connections on the wire (docs/sync.md#connections): what an expert sends to connect, what reads back.

Passwords only ever travel inward: no response model has a field that could hold one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel, SafeStr, UtcInstant

Url = Annotated[SafeStr, Field(min_length=1, max_length=2000)]


class CalDAVConnect(RequestModel):
    url: Url = Field(description="A CalDAV server, principal or calendar URL (http or https)")
    username: Annotated[SafeStr, Field(min_length=1, max_length=500)]
    password: Annotated[SafeStr, Field(min_length=1, max_length=1000)]
    busy_calendars: Annotated[list[Url], Field(max_length=50)] | None = Field(
        default=None, description="Calendar URLs whose events count as busy (default: every calendar)"
    )
    destination_calendar: Url | None = Field(
        default=None, description="Calendar URL that receives confirmed bookings (default: the first writable one)"
    )


class CalendarChoice(RequestModel):
    """``PATCH /v1/calendar-connections/{id}``: a field left out stays as it is."""

    busy_calendars: Annotated[list[Annotated[SafeStr, Field(min_length=1, max_length=2000)]],
                              Field(min_length=1, max_length=50)] | None = Field(
        default=None, description="Calendar ids (CalDAV: URLs) whose events count as busy; at least one"
    )
    destination_calendar: Annotated[SafeStr, Field(min_length=1, max_length=2000)] | None = Field(
        default=None,
        description="Writable calendar id that receives confirmed bookings; null: write no new events "
        "(events already written stay where they are)",
    )


class ICSConnect(RequestModel):
    url: Url = Field(description="An iCalendar feed URL (http, https or webcal)")


class CalendarConnectionOut(ResponseModel):
    id: str
    provider: str
    status: str
    account: str | None
    last_synced_at: UtcInstant | None
    last_error: str | None
    busy_calendars: list[str]
    destination_calendar: str | None
    created_at: UtcInstant


class CalendarConnectionList(ResponseModel):
    items: list[CalendarConnectionOut]
