"""Time-driven booking jobs (docs/worker.md#schedule): reminders, start announcements, completion, expiry.

Each calls one service function, which writes outbox events in the same transaction as its
change, then kicks the outbox so the notifications leave now rather than at the next dispatch tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import shared_task

from booking_engine.services import booking_requests, bookings, reminders
from booking_engine.store.db import Store
from worker import wiring
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


def _run(job: str, service: Callable[[Store], int]) -> int:
    worker = wiring.current()
    count = service(worker.store)
    if count:
        log.info("job wrote events", extra={"job": job, "count": count})
        worker.tasks.drain_outbox()
    return count


@shared_task(name="calbook.bookings.send_reminders", **RETRY_OPTIONS)
def send_reminders() -> int:
    return _run("reminders", reminders.send_due_reminders)


@shared_task(name="calbook.bookings.announce_starting", **RETRY_OPTIONS)
def announce_starting() -> int:
    return _run("starting", reminders.announce_starting_bookings)


@shared_task(name="calbook.bookings.complete_due", **RETRY_OPTIONS)
def complete_due() -> int:
    return _run("complete", bookings.complete_due_bookings)


@shared_task(name="calbook.bookings.expire_unconfirmed", **RETRY_OPTIONS)
def expire_unconfirmed() -> int:
    return _run("expire_unconfirmed", bookings.expire_unconfirmed_bookings)


@shared_task(name="calbook.bookings.expire_payment_holds", **RETRY_OPTIONS)
def expire_payment_holds() -> int:
    return _run("expire_payment_holds", bookings.expire_payment_holds)


@shared_task(name="calbook.requests.expire", **RETRY_OPTIONS)
def expire_requests() -> int:
    return _run("expire_requests", booking_requests.expire_requests)
