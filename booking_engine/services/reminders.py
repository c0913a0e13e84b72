"""Worker use cases around a booking's start: the 1 h reminder and the ``booking.starting`` event.

Each scan selects due bookings through its partial index (``ix_bookings_reminder_due`` or
``ix_bookings_starting_due``, see ``store/repositories/reminders.py``) and, in the same write
transaction, stamps the booking (``user_reminded_at`` /
``expert_reminded_at`` / ``starting_notified_at``) and writes the outbox event. So a
second run, or a second worker racing this one, finds nothing left to do: each party is
reminded once, each start announced once. On PostgreSQL the rows are locked with
``FOR UPDATE SKIP LOCKED`` so two scans never wait on each other; on SQLite the write
transaction (``BEGIN IMMEDIATE``) serialises them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from booking_engine.model import DomainEvent
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.store.repositories import reminders as reminder_rows

log = logging.getLogger(__name__)

REMINDER_LEAD = timedelta(hours=1)
DEFAULT_BATCH = 500


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
        for booking_id, user_at, expert_at in reminder_rows.lock_due_reminders(conn, moment, lead, batch):
            booking = booking_rows.get_booking(conn, booking_id)
            if booking is None:
                continue
            parties = [p for p, at in (("user", user_at), ("expert", expert_at)) if at is None]
            reminder_rows.stamp(conn, booking_id, **{f"{p}_reminded_at": moment for p in parties})
            minutes = int((booking.start - moment).total_seconds() // 60)
            event = DomainEvent(
                "booking.reminder", booking_id,
                {"booking": booking.as_dict(), "parties": parties, "minutesBeforeStart": minutes},
            )
            outbox_rows.add_events(conn, [event], moment)
            written += 1
            log.info("reminder recorded", extra={"booking_id": booking_id, "parties": ",".join(parties)})
    return written


def announce_starting_bookings(store: Store, now: datetime | None = None, batch: int = DEFAULT_BATCH) -> int:
    """Write one ``booking.starting`` event per confirmed booking whose start has come."""
    moment = now_or(now)
    written = 0
    with store.write() as conn:
        for booking_id in reminder_rows.lock_due_starts(conn, moment, batch):
            booking = booking_rows.get_booking(conn, booking_id)
            if booking is None:
                continue
            reminder_rows.stamp(conn, booking_id, starting_notified_at=moment)
            outbox_rows.add_events(
                conn, [DomainEvent("booking.starting", booking_id, {"booking": booking.as_dict()})], moment)
            written += 1
            log.info("booking start announced", extra={"booking_id": booking_id})
    return written
