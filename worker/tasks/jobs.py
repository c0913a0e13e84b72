"""Time-driven booking jobs (docs/worker.md#schedule): reminders, start announcements, completion, expiry.

Each writes outbox events in the same transaction as its change, then kicks the outbox
so the notifications leave now rather than at the next dispatch tick.
"""

from __future__ import annotations

import logging

from celery import shared_task

from worker import jobs
from worker.runtime import get_store, get_tasks
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


def _done(job: str, count: int) -> int:
    if count:
        log.info("job wrote events", extra={"job": job, "count": count})
        get_tasks().drain_outbox()
    return count


@shared_task(name="calbook.bookings.send_reminders", **RETRY_OPTIONS)
def send_reminders() -> int:
    return _done("reminders", jobs.send_reminders(get_store()))


@shared_task(name="calbook.bookings.announce_starting", **RETRY_OPTIONS)
def announce_starting() -> int:
    return _done("starting", jobs.announce_starting(get_store()))


@shared_task(name="calbook.bookings.complete_due", **RETRY_OPTIONS)
def complete_due() -> int:
    return _done("complete", jobs.complete_due(get_store()))


@shared_task(name="calbook.bookings.expire_unconfirmed", **RETRY_OPTIONS)
def expire_unconfirmed() -> int:
    return _done("expire_unconfirmed", jobs.expire_unconfirmed(get_store()))


@shared_task(name="calbook.bookings.expire_payment_holds", **RETRY_OPTIONS)
def expire_payment_holds() -> int:
    return _done("expire_payment_holds", jobs.expire_payment_holds(get_store()))


@shared_task(name="calbook.requests.expire", **RETRY_OPTIONS)
def expire_requests() -> int:
    return _done("expire_requests", jobs.expire_requests(get_store()))
