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

from sqlalchemy import Connection, and_, delete, insert, select, update

from booking_engine.availability import BusyIndex
from booking_engine.model import ACTIVE_STATUSES, Booking, BookingStatus, DomainEvent
from booking_engine.services._common import now_or
from booking_engine.store import repositories as repo
from booking_engine.store.db import Store
from booking_engine.store.tables import (
    booking_calendar_events,
    bookings,
    busy_blocks,
    calendar_connections,
    calendar_push_errors,
    calendar_sync_state,
)
from booking_engine.timeutil import to_utc

log = logging.getLogger(__name__)

Interval = tuple[datetime, datetime]


def get_cursor(store: Store, connection_id: str, calendar_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(
            select(calendar_sync_state.c.cursor).where(
                calendar_sync_state.c.connection_id == connection_id, calendar_sync_state.c.calendar_id == calendar_id
            )
        ).first()
    return dict(row[0]) if row else None


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
    now: datetime | None = None,
) -> int:
    """Replace the calendar's blocks (full, but for ``kept``) or the named objects' blocks; save the cursor.

    Returns rows written.
    """
    moment = now_or(now)
    with store.write() as conn:
        owner = conn.execute(
            select(calendar_connections.c.expert_id, calendar_connections.c.status,
                   calendar_connections.c.config).where(calendar_connections.c.id == connection_id)
        ).first()
        if owner is None or owner[1] == "disconnected":
            return 0  # disconnected while syncing: its blocks are already gone, keep it so
        busy = (owner[2] or {}).get("busyCalendars") or []
        if busy and calendar_id not in busy:
            return 0  # taken off the busy list while syncing: its blocks are already gone, keep it so
        expert_id = owner[0]
        scope = and_(busy_blocks.c.connection_id == connection_id, busy_blocks.c.calendar_id == calendar_id)
        keep = set(kept) - set(upserts)
        if full and not keep:
            conn.execute(delete(busy_blocks).where(scope))
        else:
            if full:  # everything stored but what the provider could not read this time
                stored = conn.execute(select(busy_blocks.c.external_id).where(scope).distinct()).scalars()
                touched = list(set(stored) - keep)
            else:
                touched = list({*upserts.keys(), *deleted})
            for i in range(0, len(touched), 500):
                conn.execute(delete(busy_blocks).where(scope, busy_blocks.c.external_id.in_(touched[i : i + 500])))
        rows = [
            {"expert_id": expert_id, "connection_id": connection_id, "calendar_id": calendar_id,
             "external_id": external_id, "start_time": to_utc(start), "end_time": to_utc(end)}
            for external_id, intervals in upserts.items()
            for start, end in intervals
            if end > start
        ]
        for i in range(0, len(rows), 5000):
            conn.execute(insert(busy_blocks), rows[i : i + 5000])
        updated = conn.execute(
            update(calendar_sync_state)
            .where(
                calendar_sync_state.c.connection_id == connection_id,
                calendar_sync_state.c.calendar_id == calendar_id,
            )
            .values(cursor=cursor, updated_at=moment)
        )
        if updated.rowcount == 0:
            conn.execute(insert(calendar_sync_state).values(
                connection_id=connection_id, calendar_id=calendar_id, cursor=cursor, updated_at=moment))
    log.info("calendar pull applied", extra={"connection_id": connection_id, "full": full, "blocks": len(rows)})
    return len(rows)


def drop_calendar(store: Store, connection_id: str, calendar_id: str) -> None:
    """A calendar no longer counted as busy: its blocks and cursor go."""
    with store.write() as conn:
        drop_calendar_rows(conn, connection_id, calendar_id)


def drop_calendar_rows(conn: Connection, connection_id: str, calendar_id: str) -> None:
    """``drop_calendar`` inside the caller's transaction (``connections.choose_calendars``)."""
    conn.execute(delete(busy_blocks).where(
        busy_blocks.c.connection_id == connection_id, busy_blocks.c.calendar_id == calendar_id))
    conn.execute(delete(calendar_sync_state).where(
        calendar_sync_state.c.connection_id == connection_id, calendar_sync_state.c.calendar_id == calendar_id))


def flag_conflicts(store: Store, expert_id: str, now: datetime | None = None) -> list[str]:
    """Flag upcoming active bookings that now overlap external busy time (docs/sync.md#conflicts).

    A newly conflicting booking gets ``hasConflict`` and a ``booking.conflict`` event (the
    expert is told); it is never cancelled. A booking whose conflict went away is quietly
    unflagged. Returns the ids newly flagged.
    """
    moment = now_or(now)
    flagged: list[str] = []
    with store.write() as conn:
        upcoming = conn.execute(
            select(bookings).where(
                bookings.c.expert_id == expert_id,
                bookings.c.status.in_(ACTIVE_STATUSES),
                bookings.c.end_time > moment,
            )
        ).mappings().all()
        if not upcoming:
            return []
        widest = timedelta(minutes=max(r["buffer_minutes"] or 0 for r in upcoming) + 1)
        start = min(r["start_time"] for r in upcoming) - widest
        end = max(r["end_time"] for r in upcoming) + widest
        blocks = conn.execute(
            select(busy_blocks.c.start_time, busy_blocks.c.end_time).where(
                busy_blocks.c.expert_id == expert_id, busy_blocks.c.end_time > start, busy_blocks.c.start_time < end
            )
        ).all()
        index = BusyIndex([(b[0], b[1]) for b in blocks])
        for row in upcoming:
            # Conflict as in docs/domain.md#conflicts-and-buffers: busy time within the booking's buffer counts too.
            buffer = timedelta(minutes=row["buffer_minutes"] or 0)
            conflict = index.overlaps(row["start_time"] - buffer, row["end_time"] + buffer)
            if conflict == row["has_conflict"]:
                continue
            booking = repo.booking_from_row(row)
            previous = booking.version
            booking.has_conflict = conflict
            booking.version += 1
            repo.update_booking(conn, booking, previous, moment)
            if conflict:
                booking.record("booking.conflict")
                repo.add_events(conn, booking.events, moment)
                flagged.append(booking.id)
    for booking_id in flagged:
        log.warning("booking conflicts with external busy time", extra={"booking_id": booking_id})
    return flagged


# --- pushed events -----------------------------------------------------------------------


def get_event_ref(store: Store, booking_id: str, connection_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(
            select(booking_calendar_events).where(
                booking_calendar_events.c.booking_id == booking_id,
                booking_calendar_events.c.connection_id == connection_id,
            )
        ).mappings().first()
    return dict(row) if row else None


def save_event_ref(
    store: Store, booking_id: str, connection_id: str, calendar_id: str, ref: str, etag: str | None, sequence: int,
    now: datetime | None = None,
) -> None:
    moment = now_or(now)
    with store.write() as conn:
        values = {"calendar_id": calendar_id, "ref": ref, "etag": etag, "sequence": sequence, "updated_at": moment}
        result = conn.execute(
            update(booking_calendar_events)
            .where(booking_calendar_events.c.booking_id == booking_id,
                   booking_calendar_events.c.connection_id == connection_id)
            .values(**values)
        )
        if result.rowcount == 0:
            conn.execute(insert(booking_calendar_events).values(
                booking_id=booking_id, connection_id=connection_id, **values))


def delete_event_ref(store: Store, booking_id: str, connection_id: str) -> None:
    with store.write() as conn:
        conn.execute(delete(booking_calendar_events).where(
            booking_calendar_events.c.booking_id == booking_id,
            booking_calendar_events.c.connection_id == connection_id,
        ))


def record_push_error(store: Store, booking_id: str, connection_id: str, error: str,
                      now: datetime | None = None) -> None:
    """The server refused this booking's event (the connection is fine): remember why, for the expert."""
    moment = now_or(now)
    key = (calendar_push_errors.c.booking_id == booking_id, calendar_push_errors.c.connection_id == connection_id)
    with store.write() as conn:
        changed = conn.execute(update(calendar_push_errors).where(*key).values(error=error[:2000], failed_at=moment))
        if changed.rowcount == 0:
            conn.execute(insert(calendar_push_errors).values(
                booking_id=booking_id, connection_id=connection_id, error=error[:2000], failed_at=moment))


def clear_push_error(store: Store, booking_id: str, connection_id: str) -> None:
    with store.write() as conn:
        conn.execute(delete(calendar_push_errors).where(
            calendar_push_errors.c.booking_id == booking_id, calendar_push_errors.c.connection_id == connection_id))


def get_push_error(store: Store, booking_id: str, connection_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(select(calendar_push_errors).where(
            calendar_push_errors.c.booking_id == booking_id, calendar_push_errors.c.connection_id == connection_id,
        )).mappings().first()
    return dict(row) if row else None


def booking_for_push(store: Store, booking_id: str) -> dict[str, Any] | None:
    """Fresh state of a booking for the calendar push: the event reflects what is true now,
    not what the outbox payload said when it was written."""
    with store.read() as conn:
        booking = repo.get_booking(conn, booking_id)
        if booking is None:
            return None
        experts = conn.execute(select(calendar_connections).where(
            calendar_connections.c.expert_id == booking.expert_id,
            calendar_connections.c.status.in_(("active", "error")),
        )).mappings().all()
    return {
        "booking": booking,
        "confirmed": booking.status in (BookingStatus.CONFIRMED,),
        "connections": [dict(r) for r in experts],
    }


def unpushed_bookings(
    store: Store, expert_id: str, connection_id: str, limit: int = 200, destination: str | None = None
) -> list[Booking]:
    """Upcoming confirmed bookings of the expert with no event recorded for this connection,
    or (given ``destination``) with their event in another calendar than ``destination``:
    the expert picked a new destination and the event is to move there."""
    pushed = select(booking_calendar_events.c.booking_id).where(
        booking_calendar_events.c.connection_id == connection_id
    )
    if destination is not None:
        pushed = pushed.where(booking_calendar_events.c.calendar_id == destination)
    with store.read() as conn:
        rows = conn.execute(
            select(bookings)
            .where(
                bookings.c.expert_id == expert_id,
                bookings.c.status == str(BookingStatus.CONFIRMED),
                bookings.c.end_time > now_or(None),
                bookings.c.id.not_in(pushed),
            )
            .order_by(bookings.c.start_time)
            .limit(limit)
        ).mappings().all()
    return [repo.booking_from_row(r) for r in rows]


def record_conflict_events(store: Store, events: list[DomainEvent], now: datetime | None = None) -> None:
    with store.write() as conn:
        repo.add_events(conn, events, now_or(now))
