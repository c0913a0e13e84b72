"""Calendar connections on the wire (docs/sync.md#connections): what an expert sends to connect, what reads back.

Passwords only ever travel inward: no response model has a field that could hold one.
"""

from __future__ import annotations

from typing import Annotated, Literal

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


class SyncProgressOut(ResponseModel):
    """A running sync (docs/sync.md#sync-progress), counted per calendar."""

    phase: Literal["listing", "fetching", "saving"] = Field(
        description="listing the account's calendars, fetching one (requests and expansion), or saving its busy items"
    )
    calendars_done: int = Field(description="calendars finished so far")
    calendars_total: int | None = Field(description="calendars to sync; null while listing")
    items_imported: int = Field(description="busy items saved so far by this sync")
    started_at: UtcInstant
    updated_at: UtcInstant


class CalendarConnectionOut(ResponseModel):
    id: str
    provider: Literal["google", "caldav", "ics", "microsoft"]
    status: Literal["active", "error", "reauth_required", "disconnected"] = Field(
        description="active: synced; error: the last sync failed (tried again); reauth_required: the expert must "
        "connect again; disconnected: removed"
    )
    account: str | None
    last_synced_at: UtcInstant | None
    last_error: str | None
    busy_calendars: list[str]
    destination_calendar: str | None
    created_at: UtcInstant
    sync_progress: SyncProgressOut | None = Field(
        default=None, description="what a sync running now has done so far; null when none runs"
    )


class CalendarConnectionList(ResponseModel):
    items: list[CalendarConnectionOut]
