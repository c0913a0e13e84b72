"""Outbox dispatch task: drain the outbox for a while; beat runs it every few seconds."""

from __future__ import annotations

import logging

from celery import shared_task

from worker import outbox
from worker.metrics import count_outbox
from worker.runtime import get_store, get_tasks
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


@shared_task(name="calbook.outbox.dispatch", **RETRY_OPTIONS)
def dispatch_outbox() -> dict[str, int]:
    result = outbox.drain(get_store())
    count_outbox(result.dispatched, result.failed)
    if result.touched:
        get_tasks().deliver_webhooks()  # deliveries were probably queued: send them now, not at the next tick
    if result.touched:
        log.info("outbox drained", extra={"dispatched": result.dispatched, "failed": result.failed,
                                          "deferred": result.deferred})
    return {"dispatched": result.dispatched, "failed": result.failed, "deferred": result.deferred}
