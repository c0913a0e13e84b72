"""Calendar connections of an expert: create, read, choose calendars, disconnect, status, sync lease.

The rules: docs/sync.md#connections.

Credentials reach this module already encrypted (the caller owns the key), and never leave
it through ``as_dict``. The worker reads them back with ``load_for_sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from booking_engine.clock import utcnow
from booking_engine.errors import Forbidden, NotFound, ValidationError
from booking_engine.model import DomainEvent, new_id
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import calendar_sync as sync_rows
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.sync_progress import SyncProgress, progress_of
from booking_engine.timeutil import iso_z

log = logging.getLogger(__name__)

PROVIDERS = ("google", "caldav", "ics")
STATUSES = ("active", "error", "reauth_required", "disconnected")
MAX_CONNECTIONS = 10
MAX_BUSY_CALENDARS = 50


class _Unchanged:
    """The marker for "not given" where ``None`` is a value (a destination of none)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


@dataclass(frozen=True, slots=True)
class CalendarConnection:
    id: str
    expert_id: str
    provider: str
    status: str
    account: str | None
    config: dict[str, Any]
    last_synced_at: datetime | None
    last_error: str | None
    created_at: datetime
    credentials: str | None = None
    sync_progress: SyncProgress | None = None

    @property
    def busy_calendars(self) -> list[str]:
        return list(self.config.get("busyCalendars") or [])

    @property
    def destination_calendar(self) -> str | None:
        return self.config.get("destinationCalendar")

    @property
    def known_calendars(self) -> list[dict[str, Any]] | None:
        """The account's calendars as listed at connect time (``{id, name, writable}``), or
        None for connections stored before calbook kept that list."""
        calendars = self.config.get("calendars")
        return [dict(c) for c in calendars] if isinstance(calendars, list) else None

    def as_dict(self) -> dict[str, Any]:
        """The API shape (docs/sync.md#connections): no secret in it."""
        return {
            "id": self.id,
            "provider": self.provider,
            "status": self.status,
            "account": self.account,
            "lastSyncedAt": iso_z(self.last_synced_at),
            "lastError": self.last_error,
            "busyCalendars": self.busy_calendars,
            "destinationCalendar": self.destination_calendar,
            "createdAt": iso_z(self.created_at),
            "syncProgress": self.sync_progress.as_dict() if self.sync_progress else None,
        }


def _from_row(row: Any, with_secret: bool = False) -> CalendarConnection:
    return CalendarConnection(
        id=row["id"],
        expert_id=row["expert_id"],
        provider=row["provider"],
        status=row["status"],
        account=row["account"],
        config=dict(row["config"] or {}),
        last_synced_at=row["last_synced_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        credentials=row["credentials"] if with_secret else None,
        sync_progress=progress_of(row, utcnow()),
    )


def create_connection(
    store: Store,
    actor: str,
    expert_id: str,
    provider: str,
    *,
    account: str | None,
    credentials: str | None,
    busy_calendars: list[str],
    destination_calendar: str | None,
    extra_config: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CalendarConnection:
    """Store a verified connection (the caller has listed its calendars already)."""
    if actor != expert_id:
        raise Forbidden("only the expert connects their calendars")
    if provider not in PROVIDERS:
        raise ValidationError(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
    moment = now_or(now)
    config = {**(extra_config or {}), "busyCalendars": busy_calendars, "destinationCalendar": destination_calendar}
    connection_id = new_id()
    with store.write() as conn:
        user_rows.ensure_user(conn, expert_id, moment)
        if connection_rows.count_not_disconnected(conn, expert_id) >= MAX_CONNECTIONS:
            raise ValidationError(f"at most {MAX_CONNECTIONS} calendar connections per expert")
        connection_rows.insert_connection(
            conn, id=connection_id, expert_id=expert_id, provider=provider, status="active", account=account,
            credentials=credentials, config=config, created_at=moment, updated_at=moment, sync_requested_at=moment,
        )
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection created", extra={"connection_id": connection_id, "provider": provider})
    return _from_row(row)


def list_connections(store: Store, actor: str) -> list[CalendarConnection]:
    with store.read() as conn:
        return [_from_row(r) for r in connection_rows.list_not_disconnected(conn, actor)]


def get_connection(store: Store, actor: str, connection_id: str) -> CalendarConnection:
    """The actor's own connection; anyone else's is ``not_found``."""
    with store.read() as conn:
        row = connection_rows.get(conn, connection_id)
    if row is None or row["expert_id"] != actor or row["status"] == "disconnected":
        raise NotFound("calendar connection not found")
    return _from_row(row)


def load_for_sync(store: Store, connection_id: str) -> CalendarConnection | None:
    """Worker use: the connection with its (encrypted) credentials, or None if gone."""
    with store.read() as conn:
        row = connection_rows.get(conn, connection_id)
    return _from_row(row, with_secret=True) if row is not None else None


def disconnect(store: Store, actor: str, connection_id: str, now: datetime | None = None) -> CalendarConnection:
    """Mark disconnected and drop its busy blocks at once; the worker stops its channels.

    The credentials stay until the worker has stopped the provider-side channels (it needs
    them for that), then ``forget_credentials`` wipes them.
    """
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None or row["expert_id"] != actor or row["status"] == "disconnected":
            raise NotFound("calendar connection not found")
        connection_rows.update_connection(conn, connection_id, status="disconnected", updated_at=moment)
        sync_rows.drop_connection(conn, connection_id)
        outbox_rows.add_events(
            conn,
            [DomainEvent("connection.disconnected", connection_id,
                         {"connectionId": connection_id, "expertId": row["expert_id"], "provider": row["provider"]})],
            moment,
        )
        row = connection_rows.get(conn, connection_id)
    return _from_row(row)


def _same_calendar(a: str, b: str) -> bool:
    """CalDAV ids are URLs: a trailing slash does not make another calendar."""
    return a == b or a.rstrip("/") == b.rstrip("/")


def _known(wanted: str, calendars: Sequence[Mapping[str, Any]], field: str) -> Mapping[str, Any]:
    for calendar in calendars:
        if _same_calendar(str(calendar["id"]), wanted):
            return calendar
    raise ValidationError(f"{wanted} is not one of the account's calendars", field=field)


def choose_calendars(
    store: Store,
    actor: str,
    connection_id: str,
    busy: Sequence[str] | None,
    destination: str | None | _Unchanged,
    known_calendars: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> tuple[CalendarConnection, bool]:
    """The expert picks which calendars count as busy and where bookings go (docs/sync.md#connections).

    ``busy=None`` and ``destination=UNCHANGED`` leave that part as it is; ``destination=None``
    stops new pushes (events already written stay where they are). ``known_calendars`` are the
    account's calendars (``{id, name, writable}``) the caller gathered; they are kept in the
    connection's config. Every id must be one of them, the destination writable, and at least
    one calendar must stay busy (``validation_error`` otherwise, nothing changed).

    In the same transaction, a calendar no longer busy loses its busy blocks and cursor, and
    a change requests a sync (as ``request_sync``): that sync imports new busy calendars and
    moves upcoming confirmed bookings to a new destination. Returns the connection and
    whether the caller should queue that sync (False when nothing changed or a requested sync
    is already waiting, as ``request_sync`` answers).
    """
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None or row["expert_id"] != actor or row["status"] == "disconnected":
            raise NotFound("calendar connection not found")
        if row["provider"] == "ics":
            raise ValidationError("an ICS feed is one calendar: there is nothing to choose", field="busyCalendars")
        config = dict(row["config"] or {})
        old_busy = list(config.get("busyCalendars") or [])
        new_busy = old_busy
        if busy is not None:
            if not busy:
                raise ValidationError("at least one calendar must count as busy", field="busyCalendars")
            if len(busy) > MAX_BUSY_CALENDARS:
                raise ValidationError(f"at most {MAX_BUSY_CALENDARS} busy calendars", field="busyCalendars")
            new_busy = list(dict.fromkeys(str(_known(b, known_calendars, "busyCalendars")["id"]) for b in busy))
        new_destination = config.get("destinationCalendar")
        if not isinstance(destination, _Unchanged):
            if destination is None:
                new_destination = None
            else:
                chosen = _known(destination, known_calendars, "destinationCalendar")
                if not chosen.get("writable"):
                    raise ValidationError("the destination calendar is read-only", field="destinationCalendar")
                new_destination = str(chosen["id"])
        changed = new_busy != old_busy or new_destination != config.get("destinationCalendar")
        config.update(busyCalendars=new_busy, destinationCalendar=new_destination)
        if known_calendars:
            config["calendars"] = [
                {"id": str(c["id"]), "name": str(c.get("name") or ""), "writable": bool(c.get("writable"))}
                for c in known_calendars
            ]
        values: dict[str, Any] = {"config": config, "updated_at": moment}
        queue_sync = changed and row["sync_requested_at"] is None
        if changed:
            values["sync_requested_at"] = row["sync_requested_at"] or moment
        connection_rows.update_connection(conn, connection_id, **values)
        if new_busy != old_busy:
            # Every calendar with blocks or a cursor that is not busy now (an old connection's
            # empty list meant "all calendars", so look at what is stored, not at old_busy).
            stored = sync_rows.stored_calendar_ids(conn, connection_id)
            for removed in sorted(stored - set(new_busy)):
                sync_rows.drop_calendar(conn, connection_id, removed)
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection calendars chosen", extra={
        "connection_id": connection_id, "busy": len(new_busy), "changed": changed})
    return _from_row(row), queue_sync


def forget_credentials(store: Store, connection_id: str) -> None:
    with store.write() as conn:
        connection_rows.forget_credentials(conn, connection_id)


def save_credentials(store: Store, connection_id: str, credentials: str, now: datetime | None = None) -> None:
    """Refreshed tokens are written back as soon as the provider reports them."""
    with store.write() as conn:
        connection_rows.update_connection(conn, connection_id, credentials=credentials, updated_at=now_or(now))


def update_config(store: Store, connection_id: str, changes: dict[str, Any], now: datetime | None = None) -> None:
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None:
            raise NotFound("calendar connection not found")
        connection_rows.update_connection(
            conn, connection_id, config={**dict(row["config"] or {}), **changes}, updated_at=now_or(now))


def set_status(
    store: Store, connection_id: str, status: str, error: str | None = None, now: datetime | None = None
) -> None:
    """Record a sync outcome. Entering ``reauth_required`` notifies the expert (outbox)."""
    if status not in STATUSES:
        raise ValueError(status)
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None or row["status"] == "disconnected":
            return
        values: dict[str, Any] = {"status": status, "last_error": error[:2000] if error else None,
                                  "updated_at": moment}
        if status == "active":
            values["last_synced_at"] = moment
        connection_rows.update_connection(conn, connection_id, **values)
        if status == "reauth_required" and row["status"] != "reauth_required":
            outbox_rows.add_events(
                conn,
                [DomainEvent("connection.reauth_required", connection_id, {
                    "connectionId": connection_id, "expertId": row["expert_id"], "provider": row["provider"],
                    "error": error,
                })],
                moment,
            )
    log.info("calendar connection status", extra={"connection_id": connection_id, "status": status})


def request_sync(store: Store, actor: str | None, connection_id: str, now: datetime | None = None) -> bool:
    """Note that a sync is wanted (API ``POST .../sync``, a Google notification).

    Returns False when one was already requested and not yet started: the caller need not
    queue another task, which coalesces bursts of notifications into one sync.
    """
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None or row["status"] == "disconnected" or (actor is not None and row["expert_id"] != actor):
            raise NotFound("calendar connection not found")
        already = row["sync_requested_at"] is not None
        connection_rows.update_connection(conn, connection_id, sync_requested_at=row["sync_requested_at"] or moment)
    return not already


def acquire_sync_lease(store: Store, connection_id: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """One sync per connection at a time, across workers: a lease row update wins or loses."""
    moment = now_or(now)
    with store.write() as conn:
        return connection_rows.take_sync_lease(conn, connection_id, ttl, moment)


def release_sync_lease(store: Store, connection_id: str, reconciled: bool = False, now: datetime | None = None) -> None:
    values: dict[str, Any] = {"sync_lock_until": None}
    if reconciled:
        values["last_reconciled_at"] = now_or(now)
    with store.write() as conn:
        connection_rows.update_connection(conn, connection_id, **values)


def due_for_sync(
    store: Store, interval: timedelta, providers: tuple[str, ...] = PROVIDERS, now: datetime | None = None,
    limit: int = 500,
) -> list[str]:
    """Connections to sync now: requested, never synced, or last synced more than ``interval`` ago.

    Connections in ``reauth_required`` wait for the expert; ``error`` ones are retried.
    """
    moment = now_or(now)
    with store.read() as conn:
        return connection_rows.due_for_sync(conn, ("active", "error"), providers, moment - interval, limit)
