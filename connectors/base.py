"""The one interface every calendar provider (CalDAV, ICS feed, Google) implements.

The worker drives a provider: it asks for the calendars of an account, pulls busy blocks
incrementally from an opaque cursor it stored after the previous pull, and writes, moves or
deletes the event of a booking. Providers know nothing of the booking store; the worker
hands their results to the service layer (``booking_engine.services.calendar_sync``).

Errors are classified so that the worker knows what to do with them: a ``TransientError`` is
retried with backoff, an ``AuthError`` marks the connection ``reauth_required`` and is not
retried, a ``PermanentError`` is recorded on the connection and not retried, and its subclass
``EventRejected`` (the server refused one event, the connection is fine) is recorded on that
booking's push only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ConnectorError(Exception):
    """Base of every provider error; ``str(err)`` is safe to store in ``lastError`` (no secrets)."""


class TransientError(ConnectorError):
    """Network trouble, 5xx, 429, rate limits: retry later with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ConnectorError):
    """Credentials refused (401, invalid_grant): the expert must reconnect."""


class PermanentError(ConnectorError):
    """The request can never succeed as it is (bad URL, 404 calendar, unsupported server)."""


class EventRejected(PermanentError):
    """The server refused to store this one event (a failed precondition); other writes still work."""


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    id: str
    name: str
    writable: bool
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class BusyInterval:
    """One busy stretch, UTC-aware datetimes, ``start < end``."""

    start: datetime
    end: datetime


@dataclass(slots=True)
class PullResult:
    """What changed in one calendar since the cursor.

    ``full`` means ``upserts`` is the calendar's whole content: every stored block of that
    calendar not named in it must go. Otherwise only the objects named in ``upserts`` and
    ``deleted`` change. Keys are stable external object ids (CalDAV href, Google event id);
    an object maps to all the busy intervals of its expansion over the horizon (possibly
    none, e.g. a transparent event, which still replaces what was stored before).
    ``cursor`` is opaque JSON-serialisable state to hand back on the next pull; it is saved
    in the same transaction as the blocks.
    """

    calendar_id: str
    full: bool
    upserts: dict[str, list[BusyInterval]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    cursor: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Objects of the calendar that could not be read this time (a per-object error): whatever
    #: is stored for them stays, even in a ``full`` result. An unreadable object is never a deletion.
    kept: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class BookingEvent:
    """The calendar event of a confirmed booking, as calbook writes it."""

    booking_id: str
    start: datetime
    end: datetime
    summary: str
    description: str
    sequence: int
    location: str | None = None


@dataclass(frozen=True, slots=True)
class EventRef:
    """Where a written event lives: CalDAV href or Google event id, with its ETag.

    ``calendar_id`` is the destination calendar the event was written for. ``ref`` addresses
    the event itself, which is usually in that calendar but need not be: a CalDAV event the
    expert moved to another calendar of the account stays where they put it.
    """

    calendar_id: str
    ref: str
    etag: str | None = None


class CalendarProvider(Protocol):
    def list_calendars(self) -> list[CalendarInfo]: ...

    def pull(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime,
        window_end: datetime,
        default_tz: str,
    ) -> PullResult: ...

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef: ...

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None: ...
