"""The periodic jobs as plain functions over a store: thin calls into the service layer.

The Celery tasks wrap these; tests call them directly on an injected clock (time-machine
or the ``now`` argument), because every service reads the time from ``booking_engine.clock``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from booking_engine.services import booking_requests, bookings, reminders
from booking_engine.store.db import Store

log = logging.getLogger(__name__)


def send_reminders(store: Store, now: datetime | None = None) -> int:
    return reminders.send_due_reminders(store, now=now)


def announce_starting(store: Store, now: datetime | None = None) -> int:
    return reminders.announce_starting_bookings(store, now=now)


def complete_due(store: Store, now: datetime | None = None) -> int:
    return bookings.complete_due_bookings(store, now=now)


def expire_unconfirmed(store: Store, now: datetime | None = None) -> int:
    return bookings.expire_unconfirmed_bookings(store, now=now)


def expire_payment_holds(store: Store, now: datetime | None = None) -> int:
    return bookings.expire_payment_holds(store, now=now)


def expire_requests(store: Store, now: datetime | None = None) -> int:
    return booking_requests.expire_requests(store, now=now)


def audit(store: Store) -> list[tuple[str, str]]:
    pairs = bookings.audit_conflicts(store)
    if not pairs:
        log.info("integrity audit: no conflicting bookings")
    return pairs
