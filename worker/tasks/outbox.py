"""Outbox dispatch task: drain the outbox for a while; beat runs it every few seconds."""

from __future__ import annotations

import logging

from celery import shared_task

from config.task_sender import DISPATCH_OUTBOX
from worker import outbox, wiring
from worker.metrics import count_outbox
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


@shared_task(name=DISPATCH_OUTBOX, **RETRY_OPTIONS)
def dispatch_outbox() -> dict[str, int]:
    worker = wiring.current()
    result = outbox.drain(worker.store, worker.handlers, settings=worker.settings)
    count_outbox(result.dispatched, result.failed)
    if result.touched:
        worker.tasks.deliver_webhooks()  # deliveries were probably queued: send them now, not at the next tick
        log.info("outbox drained", extra={"dispatched": result.dispatched, "failed": result.failed,
                                          "deferred": result.deferred})
    return {"dispatched": result.dispatched, "failed": result.failed, "deferred": result.deferred}
