"""Worker use cases around a booking's start: the 1 h reminder and the ``booking.starting`` event.

Each scan selects due bookings through its partial index (``ix_bookings_reminder_due`` or
``ix_bookings_starting_due``: the predicates below repeat the index predicates literally,
with no bound parameters, so that PostgreSQL can prove the index applies even to a generic
plan) and, in the same write transaction, stamps the booking (``user_reminded_at`` /
``expert_reminded_at`` / ``starting_notified_at``) and writes the outbox event. So a
second run, or a second worker racing this one, finds nothing left to do: each party is
reminded once, each start announced once. On PostgreSQL the rows are locked with
``FOR UPDATE SKIP LOCKED`` so two scans never wait on each other; on SQLite the write
transaction (``BEGIN IMMEDIATE``) serialises them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, literal_column, or_, select, update

from booking_engine.model import DomainEvent
from booking_engine.services._common import now_or
from booking_engine.store import repositories as repo
from booking_engine.store.db import Store
from booking_engine.store.tables import bookings

log = logging.getLogger(__name__)

REMINDER_LEAD = timedelta(hours=1)
DEFAULT_BATCH = 500

_CONFIRMED = bookings.c.status == literal_column("'confirmed'")
_REMINDER_PENDING = and_(
    _CONFIRMED, or_(bookings.c.user_reminded_at.is_(None), bookings.c.expert_reminded_at.is_(None))
)
_STARTING_PENDING = and_(_CONFIRMED, bookings.c.starting_notified_at.is_(None))


def reminder_scan(now: datetime, lead: timedelta = REMINDER_LEAD, limit: int = DEFAULT_BATCH) -> Select[Any]:
    """Confirmed bookings starting in ``(now, now + lead]`` with a party not yet reminded."""
    return (
        select(bookings.c.id, bookings.c.user_reminded_at, bookings.c.expert_reminded_at)
        .where(_REMINDER_PENDING, bookings.c.start_time > now, bookings.c.start_time <= now + lead)
        .order_by(bookings.c.start_time)
        .limit(limit)
    )


def starting_scan(now: datetime, limit: int = DEFAULT_BATCH) -> Select[Any]:
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


def send_due_reminders(
    store: Store, now: datetime | None = None, lead: timedelta = REMINDER_LEAD, batch: int = DEFAULT_BATCH
) -> int:
    """Write one ``booking.reminder`` event per due booking, for the parties not yet reminded.

    The event's payload holds ``parties`` (``["user", "expert"]`` or the one left) so the
    notifiers know whom to tell. Returns the number of events written.
    """
    moment = now_or(now)
    written = 0
    with store.write() as conn:
        rows = conn.execute(_lock(conn, reminder_scan(moment, lead, batch))).all()
        for booking_id, user_at, expert_at in rows:
            booking = repo.get_booking(conn, booking_id)
            if booking is None:
                continue
            parties = [p for p, at in (("user", user_at), ("expert", expert_at)) if at is None]
            values = {f"{p}_reminded_at": moment for p in parties}
            conn.execute(update(bookings).where(bookings.c.id == booking_id).values(**values))
            minutes = int((booking.start - moment).total_seconds() // 60)
            event = DomainEvent(
                "booking.reminder", booking_id,
                {"booking": booking.as_dict(), "parties": parties, "minutesBeforeStart": minutes},
            )
            repo.add_events(conn, [event], moment)
            written += 1
            log.info("reminder recorded", extra={"booking_id": booking_id, "parties": ",".join(parties)})
    return written


def announce_starting_bookings(store: Store, now: datetime | None = None, batch: int = DEFAULT_BATCH) -> int:
    """Write one ``booking.starting`` event per confirmed booking whose start has come."""
    moment = now_or(now)
    written = 0
    with store.write() as conn:
        ids = [r[0] for r in conn.execute(_lock(conn, starting_scan(moment, batch)))]
        for booking_id in ids:
            booking = repo.get_booking(conn, booking_id)
            if booking is None:
                continue
            conn.execute(update(bookings).where(bookings.c.id == booking_id).values(starting_notified_at=moment))
            repo.add_events(conn, [DomainEvent("booking.starting", booking_id, {"booking": booking.as_dict()})], moment)
            written += 1
            log.info("booking start announced", extra={"booking_id": booking_id})
    return written
