"""Nightly integrity audit: report (log at ERROR) any pair of conflicting active bookings."""

from __future__ import annotations

from celery import shared_task

from worker import jobs
from worker.runtime import get_store
from worker.tasks.retry import RETRY_OPTIONS


@shared_task(name="calbook.audit.conflicts", **RETRY_OPTIONS)
def audit_conflicts() -> list[list[str]]:
    return [list(pair) for pair in jobs.audit(get_store())]
