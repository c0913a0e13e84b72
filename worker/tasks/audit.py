"""Nightly housekeeping: the integrity audit (conflicting active bookings are logged at ERROR)
and the retention of delivery bookkeeping."""

from __future__ import annotations

from celery import shared_task

from worker import jobs, retention
from worker.runtime import get_store
from worker.tasks.retry import RETRY_OPTIONS


@shared_task(name="calbook.audit.conflicts", **RETRY_OPTIONS)
def audit_conflicts() -> list[list[str]]:
    return [list(pair) for pair in jobs.audit(get_store())]


@shared_task(name="calbook.maintenance.prune", **RETRY_OPTIONS)
def prune_history() -> dict[str, int]:
    return retention.as_dict(retention.prune(get_store()))
