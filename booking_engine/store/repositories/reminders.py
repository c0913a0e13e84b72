"""The due scans behind reminders and start announcements, and the stamps that make them once-only.

Each scan selects due bookings through its partial index (``ix_bookings_reminder_due`` or
``ix_bookings_starting_due``: the predicates below repeat the index predicates literally,
with no bound parameters, so that PostgreSQL can prove the index applies even to a generic
plan). On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED`` so two scans never
wait on each other; on SQLite the write transaction (``BEGIN IMMEDIATE``) serialises them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, literal_column, or_, select, update

from booking_engine.store.tables import bookings

_CONFIRMED = bookings.c.status == literal_column("'confirmed'")
_REMINDER_PENDING = and_(
    _CONFIRMED, or_(bookings.c.user_reminded_at.is_(None), bookings.c.expert_reminded_at.is_(None))
)
_STARTING_PENDING = and_(_CONFIRMED, bookings.c.starting_notified_at.is_(None))


def reminder_scan(now: datetime, lead: timedelta, limit: int) -> Select[Any]:
    """Confirmed bookings starting in ``(now, now + lead]`` with a party not yet reminded."""
    return (
        select(bookings.c.id, bookings.c.user_reminded_at, bookings.c.expert_reminded_at)
        .where(_REMINDER_PENDING, bookings.c.start_time > now, bookings.c.start_time <= now + lead)
        .order_by(bookings.c.start_time)
        .limit(limit)
    )


def starting_scan(now: datetime, limit: int) -> Select[Any]:
    """Confirmed bookings that have started, are not over, and were not announced yet.

    A booking whose end has passed while no worker ran is not announced late: a
    ``booking.starting`` for a call that is already over would start nothing.
    """
    return (
        select(bookings.c.id)
        .where(_STARTING_PENDING, bookings.c.start_time <= now, bookings.c.end_time > now)
        .order_by(bookings.c.start_time)
        .limit(limit)
    )


def _lock(conn: Connection, stmt: Select[Any]) -> Select[Any]:
    if conn.dialect.name == "postgresql":
        return stmt.with_for_update(of=bookings, skip_locked=True)
    return stmt


def lock_due_reminders(
    conn: Connection, now: datetime, lead: timedelta, limit: int
) -> list[tuple[str, datetime | None, datetime | None]]:
    """``(booking id, user reminded at, expert reminded at)`` of the due bookings, locked."""
    return [(r[0], r[1], r[2]) for r in conn.execute(_lock(conn, reminder_scan(now, lead, limit)))]


def lock_due_starts(conn: Connection, now: datetime, limit: int) -> list[str]:
    return [r[0] for r in conn.execute(_lock(conn, starting_scan(now, limit)))]


def stamp(conn: Connection, booking_id: str, **moments: datetime) -> None:
    """Set ``user_reminded_at``, ``expert_reminded_at`` or ``starting_notified_at``."""
    conn.execute(update(bookings).where(bookings.c.id == booking_id).values(**moments))
