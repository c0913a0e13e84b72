"""Applying a calendar pull to the store, flagging conflicts, and remembering pushed events.

The worker hands over plain values (no connector types: the domain imports no adapter):
``upserts`` maps an external object id to its busy intervals, ``deleted`` names objects
that are gone, ``full`` says the upserts are the calendar's whole content, except ``kept``:
objects the provider could not read this time, whose stored blocks stay as they are. Blocks and the
new cursor are written in one transaction, so a sync that fails half-way leaves the
previous blocks and cursor intact, and a retried sync starts from the old cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from booking_engine.availability import BusyIndex
from booking_engine.connections import SYNCABLE, ConnectionStatus, EventRecord, Provider, PushTarget
from booking_engine.model import Booking, DomainEvent
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import busy_time as busy_rows
from booking_engine.store.repositories import calendar_sync as sync_rows
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.store.repositories import outbox as outbox_rows

log = logging.getLogger(__name__)

Interval = tuple[datetime, datetime]


def get_cursor(store: Store, connection_id: str, calendar_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        return sync_rows.get_cursor(conn, connection_id, calendar_id)


def apply_pull(
    store: Store,
    connection_id: str,
    calendar_id: str,
    *,
    full: bool,
    upserts: Mapping[str, Iterable[Interval]],
    deleted: Iterable[str],
    cursor: dict[str, Any],
    kept: Iterable[str] = (),
    progress: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Replace the calendar's blocks (full, but for ``kept``) or the named objects' blocks; save the cursor
    and, given ``progress``, the sync's progress after this calendar (its columns), all in one transaction.

    Returns rows written.
    """
    moment = now_or(now)
    with store.write() as conn:
        owner = connection_rows.get(conn, connection_id)
        if owner is None or owner["status"] == ConnectionStatus.DISCONNECTED:
            return 0  # disconnected while syncing: its blocks are already gone, keep it so
        busy = (owner["config"] or {}).get("busyCalendars") or []
        if busy and calendar_id not in busy:
            return 0  # taken off the busy list while syncing: its blocks are already gone, keep it so
        written = sync_rows.replace_blocks(
            conn, owner["expert_id"], connection_id, calendar_id, full=full, upserts=upserts, deleted=deleted,
            kept=kept,
        )
        sync_rows.save_cursor(conn, connection_id, calendar_id, cursor, moment)
        if progress:
            connection_rows.update_connection(conn, connection_id, **progress)
    log.info("calendar pull applied", extra={"connection_id": connection_id, "full": full, "blocks": written})
    return written


def drop_calendar(store: Store, connection_id: str, calendar_id: str) -> None:
    """A calendar no longer counted as busy: its blocks and cursor go."""
    with store.write() as conn:
        sync_rows.drop_calendar(conn, connection_id, calendar_id)


def flag_conflicts(store: Store, expert_id: str, now: datetime | None = None) -> list[str]:
    """Flag upcoming active bookings that now overlap external busy time (``flag_conflicts_in``)."""
    moment = now_or(now)
    with store.write() as conn:
        flagged = flag_conflicts_in(conn, expert_id, moment)
    log_conflicts(flagged)
    return flagged


def log_conflicts(flagged: list[str]) -> None:
    for booking_id in flagged:
        log.warning("booking conflicts with external busy time", extra={"booking_id": booking_id})


def flag_conflicts_in(conn: Connection, expert_id: str, moment: datetime) -> list[str]:
    """Flag upcoming active bookings that now overlap external busy time (docs/sync.md#conflicts),
    inside the caller's transaction (a sync's finishing one, ``sync_runs.finish_sync``).

    A newly conflicting booking gets ``hasConflict`` and a ``booking.conflict`` event (the
    expert is told); it is never cancelled. A booking whose conflict went away is quietly
    unflagged. Returns the ids newly flagged.
    """
    flagged: list[str] = []
    upcoming = booking_rows.upcoming_active(conn, expert_id, moment)
    if not upcoming:
        return []
    widest = timedelta(minutes=max(b.buffer or 0 for b in upcoming) + 1)
    start = min(b.start for b in upcoming) - widest
    end = max(b.end for b in upcoming) + widest
    index = BusyIndex(busy_rows.busy_blocks_between(conn, expert_id, start, end))
    for booking in upcoming:
        # Conflict as in docs/domain.md#conflicts-and-buffers: busy time within the booking's buffer counts too.
        buffer = timedelta(minutes=booking.buffer or 0)
        conflict = index.overlaps(booking.start - buffer, booking.end + buffer)
        if conflict == booking.has_conflict:
            continue
        previous = booking.version
        booking.has_conflict = conflict
        booking.version += 1
        booking_rows.update_booking(conn, booking, previous, moment)
        if conflict:
            booking.record("booking.conflict")
            outbox_rows.add_events(conn, booking.events, moment)
            flagged.append(booking.id)
    return flagged


# --- pushed events -----------------------------------------------------------------------


def get_event_ref(store: Store, booking_id: str, connection_id: str) -> EventRecord | None:
    """Where the booking's event was written for the connection, if it was."""
    with store.read() as conn:
        row = sync_rows.get_event_ref(conn, booking_id, connection_id)
    return EventRecord(row["calendar_id"], row["ref"], row["etag"], row["sequence"]) if row else None


def save_event_ref(
    store: Store, booking_id: str, connection_id: str, calendar_id: str, ref: str, etag: str | None, sequence: int,
    now: datetime | None = None,
) -> None:
    moment = now_or(now)
    with store.write() as conn:
        sync_rows.save_event_ref(conn, booking_id, connection_id, {
            "calendar_id": calendar_id, "ref": ref, "etag": etag, "sequence": sequence, "updated_at": moment})


def delete_event_ref(store: Store, booking_id: str, connection_id: str) -> None:
    with store.write() as conn:
        sync_rows.delete_event_ref(conn, booking_id, connection_id)


def record_push_error(store: Store, booking_id: str, connection_id: str, error: str,
                      now: datetime | None = None) -> None:
    """The server refused this booking's event (the connection is fine): remember why, for the expert."""
    with store.write() as conn:
        sync_rows.record_push_error(conn, booking_id, connection_id, error[:2000], now_or(now))


def clear_push_error(store: Store, booking_id: str, connection_id: str) -> None:
    with store.write() as conn:
        sync_rows.clear_push_error(conn, booking_id, connection_id)


def get_push_error(store: Store, booking_id: str, connection_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        return sync_rows.get_push_error(conn, booking_id, connection_id)


def booking_for_push(store: Store, booking_id: str) -> tuple[Booking, list[PushTarget]] | None:
    """Fresh state of a booking for the calendar push, and the expert's connections that sync: the
    event reflects what is true now, not what the outbox payload said when it was written."""
    with store.read() as conn:
        booking = booking_rows.get_booking(conn, booking_id)
        if booking is None:
            return None
        rows = connection_rows.of_expert_with_status(conn, booking.expert_id, [str(s) for s in SYNCABLE])
    targets = [PushTarget(r["id"], Provider(r["provider"]), (r["config"] or {}).get("destinationCalendar"))
               for r in rows]
    return booking, targets


def unpushed_bookings(
    store: Store, expert_id: str, connection_id: str, limit: int = 200, destination: str | None = None
) -> list[Booking]:
    """Upcoming confirmed bookings of the expert with no event recorded for this connection,
    or (given ``destination``) with their event in another calendar than ``destination``:
    the expert picked a new destination and the event is to move there."""
    with store.read() as conn:
        return booking_rows.unpushed(conn, expert_id, connection_id, now_or(None), limit, destination)


def record_conflict_events(store: Store, events: list[DomainEvent], now: datetime | None = None) -> None:
    with store.write() as conn:
        outbox_rows.add_events(conn, events, now_or(now))
