"""The calendar connection aggregate in plain Python (docs/sync.md#connections), beside ``lifecycle.py``.

One definition of each rule the API, the services and the worker share:

* ``ConnectionStatus`` and ``Provider``, and which statuses sync (``is_syncable``);
* ``CalendarEntry``, the ``{id, name, writable}`` an account's calendar is known by;
* ``CalendarChoice``, which calendars count as busy and which receives bookings: the default for
  a fresh connection, the expert's pick checked against the account's calendars (every id known,
  the destination writable, at least one busy);
* ``CalendarConnection``, a stored connection, ``PushTarget``, a connection a booking's event
  is written to, ``EventRecord``, where that event lives, and ``VerifiedAccount``, what a
  provider answered for an account being connected.

Nothing here touches the store, a provider or HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from booking_engine.errors import ValidationError
from booking_engine.sync_progress import SyncProgress
from booking_engine.timeutil import iso_z

MAX_CONNECTIONS = 10
MAX_BUSY_CALENDARS = 50


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    """Synced (or about to be, right after connecting)."""
    ERROR = "error"
    """The last sync or push failed; it is tried again."""
    REAUTH_REQUIRED = "reauth_required"
    """The provider refused the credentials: the expert must connect again; nothing syncs meanwhile."""
    DISCONNECTED = "disconnected"
    """Removed by the expert; the row stays (its credentials are wiped once channels are stopped)."""


class Provider(StrEnum):
    GOOGLE = "google"
    CALDAV = "caldav"
    ICS = "ics"
    MICROSOFT = "microsoft"


SYNCABLE: tuple[ConnectionStatus, ...] = (ConnectionStatus.ACTIVE, ConnectionStatus.ERROR)
"""Statuses that sync, push and are checked for free/busy: ``error`` is often transient and its
credentials may well work; ``reauth_required`` waits for the expert."""

POLLED: tuple[Provider, ...] = (Provider.CALDAV, Provider.ICS)
"""Providers without push notifications: synced on a short interval. Google and Microsoft are pushed by
webhooks and polled only as a slow backstop."""


def is_syncable(status: str) -> bool:
    return status in SYNCABLE


def same_calendar(a: str, b: str) -> bool:
    """CalDAV ids are URLs: a trailing slash does not make another calendar."""
    return a == b or a.rstrip("/") == b.rstrip("/")


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """One calendar of an account as a connection keeps it (``config["calendars"]``)."""

    id: str
    name: str
    writable: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "writable": self.writable}

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> CalendarEntry:
        return cls(str(value["id"]), str(value.get("name") or ""), bool(value.get("writable")))


def calendar_entries(values: Iterable[Mapping[str, Any]]) -> list[CalendarEntry]:
    return [CalendarEntry.of(v) for v in values]


def _known(wanted: str, calendars: Sequence[CalendarEntry], field_name: str) -> CalendarEntry:
    for calendar in calendars:
        if same_calendar(calendar.id, wanted):
            return calendar
    raise ValidationError(f"{wanted} is not one of the account's calendars", field=field_name)


@dataclass(frozen=True, slots=True)
class CalendarChoice:
    """Which calendars count as busy and which one receives confirmed bookings (``None``: none)."""

    busy: tuple[str, ...]
    destination: str | None

    @classmethod
    def default(cls, calendars: Sequence[CalendarEntry], primary: str | None = None) -> CalendarChoice:
        """A fresh connection's choice.

        With ``primary`` (Google names its primary calendar by the account's address) that calendar
        is busy and, if writable, the destination; when the list has no such entry (a Workspace
        alias) the first writable calendar stands in. Without it (CalDAV) every calendar is busy
        and the first writable one is the destination.
        """
        if primary is not None:
            main = next((c for c in calendars if c.id.lower() == primary.lower()), None)
            if main is None:
                main = next((c for c in calendars if c.writable), calendars[0] if calendars else None)
            if main is None:
                return cls((), None)
            return cls((main.id,), main.id if main.writable else None)
        writable = next((c for c in calendars if c.writable), None)
        return cls(tuple(c.id for c in calendars), writable.id if writable else None)

    @classmethod
    def picked(
        cls,
        calendars: Sequence[CalendarEntry],
        busy: Sequence[str] | None,
        destination: str | None,
        *,
        current: CalendarChoice | None = None,
        destination_given: bool = True,
    ) -> CalendarChoice:
        """The expert's pick, checked against the account's ``calendars``.

        ``busy=None`` keeps the current busy set (or, with no current choice, the default);
        ``destination_given=False`` keeps the current destination likewise. Every id must be one of
        the account's calendars, the destination writable, and at least one calendar busy
        (``validation_error`` on the field otherwise). Ids are stored as the account spells them.
        """
        fallback = current or cls.default(calendars)
        if busy is None:
            new_busy = fallback.busy
        else:
            if not busy:
                raise ValidationError("at least one calendar must count as busy", field="busyCalendars")
            if len(busy) > MAX_BUSY_CALENDARS:
                raise ValidationError(f"at most {MAX_BUSY_CALENDARS} busy calendars", field="busyCalendars")
            new_busy = tuple(dict.fromkeys(_known(b, calendars, "busyCalendars").id for b in busy))
        if not destination_given:
            new_destination = fallback.destination
        elif destination is None:
            new_destination = None
        else:
            chosen = _known(destination, calendars, "destinationCalendar")
            if not chosen.writable:
                raise ValidationError("the destination calendar is read-only", field="destinationCalendar")
            new_destination = chosen.id
        return cls(new_busy, new_destination)


@dataclass(frozen=True, slots=True)
class CalendarConnection:
    """A stored connection. ``credentials`` is the encrypted token, present only for the worker."""

    id: str
    expert_id: str
    provider: Provider
    status: ConnectionStatus
    account: str | None
    config: dict[str, Any]
    last_synced_at: datetime | None
    last_error: str | None
    created_at: datetime
    credentials: str | None = None
    sync_progress: SyncProgress | None = None
    sync_requested_at: datetime | None = None
    last_reconciled_at: datetime | None = None
    next_sync_at: datetime | None = None
    """When it is due for its next sync (docs/sync.md#scheduling); None: not scheduled."""
    sync_failures: int = 0
    sync_resume_from: int | None = None
    """The calendar (index) a sync stopped by its time budget continues at."""

    @property
    def busy_calendars(self) -> list[str]:
        return list(self.config.get("busyCalendars") or [])

    @property
    def destination_calendar(self) -> str | None:
        return self.config.get("destinationCalendar")

    @property
    def choice(self) -> CalendarChoice:
        return CalendarChoice(tuple(self.busy_calendars), self.destination_calendar)

    @property
    def known_calendars(self) -> list[CalendarEntry] | None:
        """The account's calendars as listed at connect time, or None for connections stored
        before calbook kept that list."""
        calendars = self.config.get("calendars")
        return calendar_entries(calendars) if isinstance(calendars, list) else None

    @property
    def syncable(self) -> bool:
        return is_syncable(self.status)

    def as_dict(self) -> dict[str, Any]:
        """The API shape (docs/sync.md#connections): no secret in it."""
        return {
            "id": self.id,
            "provider": str(self.provider),
            "status": str(self.status),
            "account": self.account,
            "lastSyncedAt": iso_z(self.last_synced_at),
            "lastError": self.last_error,
            "busyCalendars": self.busy_calendars,
            "destinationCalendar": self.destination_calendar,
            "createdAt": iso_z(self.created_at),
            "syncProgress": self.sync_progress.as_dict() if self.sync_progress else None,
        }


@dataclass(frozen=True, slots=True)
class PushTarget:
    """A connection a booking's event is written to: its id, provider and destination calendar."""

    connection_id: str
    provider: Provider
    destination: str | None

    @property
    def writable(self) -> bool:
        """ICS feeds are read-only: nothing is ever pushed to them."""
        return self.provider != Provider.ICS


@dataclass(frozen=True, slots=True)
class EventRecord:
    """Where a booking's event was written for a connection (``booking_calendar_events``)."""

    calendar_id: str
    ref: str
    etag: str | None
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """An account a provider just answered for: who it is, its calendars, its credentials (encrypted)."""

    account: str
    calendars: list[CalendarEntry]
    credentials: str
    config: dict[str, Any] = field(default_factory=dict)
