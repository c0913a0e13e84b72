"""What a sync keeps per connection: imported busy blocks, per-calendar cursors, the events
pushed for bookings (``booking_calendar_events``) and the pushes a server refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from booking_engine.store.tables import booking_calendar_events, busy_blocks, calendar_push_errors, calendar_sync_state
from booking_engine.timeutil import to_utc

Interval = tuple[datetime, datetime]


def get_cursor(conn: Connection, connection_id: str, calendar_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(calendar_sync_state.c.cursor).where(
            calendar_sync_state.c.connection_id == connection_id, calendar_sync_state.c.calendar_id == calendar_id
        )
    ).first()
    return dict(row[0]) if row else None


def cursors_of(conn: Connection, connection_id: str) -> dict[str, dict[str, Any]]:
    """Every calendar's cursor of the connection, in one query (a sync reads them all as it starts)."""
    rows = conn.execute(select(calendar_sync_state.c.calendar_id, calendar_sync_state.c.cursor)
                        .where(calendar_sync_state.c.connection_id == connection_id))
    return {r[0]: dict(r[1]) for r in rows if r[1] is not None}


def replace_blocks(
    conn: Connection,
    expert_id: str,
    connection_id: str,
    calendar_id: str,
    *,
    full: bool,
    upserts: Mapping[str, Iterable[Interval]],
    deleted: Iterable[str],
    kept: Iterable[str],
) -> int:
    """Replace the calendar's blocks (full, but for ``kept``) or the named objects' blocks; returns rows written."""
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
    return len(rows)


def save_cursor(conn: Connection, connection_id: str, calendar_id: str, cursor: dict[str, Any], now: datetime) -> None:
    updated = conn.execute(
        update(calendar_sync_state)
        .where(calendar_sync_state.c.connection_id == connection_id, calendar_sync_state.c.calendar_id == calendar_id)
        .values(cursor=cursor, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(insert(calendar_sync_state).values(
            connection_id=connection_id, calendar_id=calendar_id, cursor=cursor, updated_at=now))


def stored_calendar_ids(conn: Connection, connection_id: str) -> set[str]:
    """Every calendar of the connection that has busy blocks or a cursor stored."""
    stored = {r[0] for r in conn.execute(
        select(busy_blocks.c.calendar_id).distinct().where(busy_blocks.c.connection_id == connection_id))}
    stored |= {r[0] for r in conn.execute(
        select(calendar_sync_state.c.calendar_id).where(calendar_sync_state.c.connection_id == connection_id))}
    return stored


def drop_calendar(conn: Connection, connection_id: str, calendar_id: str) -> None:
    """A calendar no longer counted as busy: its blocks and cursor go."""
    conn.execute(delete(busy_blocks).where(
        busy_blocks.c.connection_id == connection_id, busy_blocks.c.calendar_id == calendar_id))
    conn.execute(delete(calendar_sync_state).where(
        calendar_sync_state.c.connection_id == connection_id, calendar_sync_state.c.calendar_id == calendar_id))


def drop_connection(conn: Connection, connection_id: str) -> None:
    """A disconnected connection: all its blocks and cursors go."""
    conn.execute(delete(busy_blocks).where(busy_blocks.c.connection_id == connection_id))
    conn.execute(delete(calendar_sync_state).where(calendar_sync_state.c.connection_id == connection_id))


# --- pushed events -----------------------------------------------------------------------


def get_event_ref(conn: Connection, booking_id: str, connection_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(booking_calendar_events).where(
            booking_calendar_events.c.booking_id == booking_id,
            booking_calendar_events.c.connection_id == connection_id,
        )
    ).mappings().first()
    return dict(row) if row else None


def save_event_ref(conn: Connection, booking_id: str, connection_id: str, values: dict[str, Any]) -> None:
    result = conn.execute(
        update(booking_calendar_events)
        .where(booking_calendar_events.c.booking_id == booking_id,
               booking_calendar_events.c.connection_id == connection_id)
        .values(**values)
    )
    if result.rowcount == 0:
        conn.execute(
            insert(booking_calendar_events).values(booking_id=booking_id, connection_id=connection_id, **values)
        )


def delete_event_ref(conn: Connection, booking_id: str, connection_id: str) -> None:
    conn.execute(delete(booking_calendar_events).where(
        booking_calendar_events.c.booking_id == booking_id,
        booking_calendar_events.c.connection_id == connection_id,
    ))


def _push_error_key(booking_id: str, connection_id: str) -> tuple[Any, Any]:
    return (calendar_push_errors.c.booking_id == booking_id, calendar_push_errors.c.connection_id == connection_id)


def record_push_error(conn: Connection, booking_id: str, connection_id: str, error: str, now: datetime) -> None:
    key = _push_error_key(booking_id, connection_id)
    changed = conn.execute(update(calendar_push_errors).where(*key).values(error=error, failed_at=now))
    if changed.rowcount == 0:
        conn.execute(insert(calendar_push_errors).values(
            booking_id=booking_id, connection_id=connection_id, error=error, failed_at=now))


def clear_push_error(conn: Connection, booking_id: str, connection_id: str) -> None:
    conn.execute(delete(calendar_push_errors).where(*_push_error_key(booking_id, connection_id)))


def get_push_error(conn: Connection, booking_id: str, connection_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(calendar_push_errors).where(*_push_error_key(booking_id, connection_id))
    ).mappings().first()
    return dict(row) if row else None
