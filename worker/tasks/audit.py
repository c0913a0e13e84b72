"""Nightly housekeeping: the integrity audit (conflicting active bookings are logged at ERROR)
and the retention of delivery bookkeeping."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from booking_engine.services import bookings
from worker import retention, wiring
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


@shared_task(name="calbook.audit.conflicts", **RETRY_OPTIONS)
def audit_conflicts() -> list[list[str]]:
    pairs = bookings.audit_conflicts(wiring.current().store)
    if not pairs:
        log.info("integrity audit: no conflicting bookings")
    return [list(pair) for pair in pairs]


@shared_task(name="calbook.maintenance.prune", **RETRY_OPTIONS)
def prune_history() -> dict[str, int]:
    worker = wiring.current()
    keep = timedelta(days=worker.settings.worker.retention_days)
    return retention.as_dict(retention.prune(worker.store, keep))
