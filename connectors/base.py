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

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, Self


class ConnectorError(Exception):
    """Base of every provider error; ``str(err)`` is safe to store in ``lastError`` (no secrets)."""


class TransientError(ConnectorError):
    """Network trouble, 5xx, 429, rate limits: retry later with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """calbook's own shared rate limit said "not now" (``connectors.rate_limits``): nothing failed at
    the provider, the request was not sent; ``retry_after`` is when its turn comes."""


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


@dataclass(frozen=True, slots=True)
class WatchChannel:
    """A push-notification channel on one calendar's events.

    Store ``id``, ``resource_id``, ``expiration`` and ``webhook.hash_channel_token(token)``;
    the plain ``token`` is only needed here, never again.
    """

    id: str
    resource_id: str
    token: str
    expiration: datetime | None
    calendar_id: str


class Reconciler(Protocol):
    """Optional: a periodic full comparison that catches what an incremental pull missed."""

    def reconcile(
        self, calendar_id: str, cursor: dict[str, Any], window_start: datetime, window_end: datetime
    ) -> PullResult: ...


class WatchChannels(Protocol):
    """Optional: push notifications when a calendar's events change (Google ``events.watch``)."""

    def watch(self, calendar_id: str, address: str, ttl: timedelta) -> WatchChannel: ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...


class RenewableChannels(WatchChannels, Protocol):
    """Optional: channels whose lifetime is extended in place (Graph subscriptions), not replaced."""

    def renew(self, channel_id: str, ttl: timedelta) -> datetime | None: ...


class FreeBusy(Protocol):
    """Optional: an instant busy check of some calendars over a range (Google ``freebusy.query``)."""

    def freebusy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[BusyInterval]]: ...


class CalendarProvider(ABC):
    """What every provider does, and the optional capabilities it declares.

    A provider holds network resources: use it as a context manager (or call ``close``). A
    capability a provider lacks answers ``None``, so a caller asks ``provider.watch_channels()``
    rather than what class the provider is.
    """

    @abstractmethod
    def list_calendars(self) -> list[CalendarInfo]: ...

    @abstractmethod
    def pull(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime,
        window_end: datetime,
        default_tz: str,
    ) -> PullResult: ...

    @abstractmethod
    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef: ...

    @abstractmethod
    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Release the provider's network connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- optional capabilities (``None``: not offered) -------------------------------------

    def reconciler(self) -> Reconciler | None:
        return None

    def watch_channels(self) -> WatchChannels | None:
        return None

    def renewable_channels(self) -> RenewableChannels | None:
        return None

    def free_busy(self) -> FreeBusy | None:
        return None

    def updated_credentials(self) -> dict[str, Any] | None:
        """Credentials to store again when the provider refreshed them (OAuth tokens); else ``None``."""
        return None
