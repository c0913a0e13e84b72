"""Outbox tasks: the dispatch (``calbook.notify``) and the calendar-push drain (``calbook.push``).

``calbook.outbox.dispatch`` drains the outbox for a while (beat runs it every few seconds, and
every write kicks it): e-mail, webhook fan-out and the other quick handlers run there; the
calendar push is handed off to ``calbook.outbox.push``, which runs on its own queue and its own
workers, so a slow calendar server never delays a confirmation e-mail (docs/worker.md#outbox).
"""

from __future__ import annotations

import logging

from celery import shared_task

from config.task_sender import DISPATCH_OUTBOX, DRAIN_PUSH
from worker import outbox, wiring
from worker.metrics import count_outbox
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


@shared_task(name=DISPATCH_OUTBOX, **RETRY_OPTIONS)
def dispatch_outbox() -> dict[str, int]:
    worker = wiring.current()
    result = outbox.drain(worker.store, worker.handlers, settings=worker.settings, separate=wiring.SEPARATE_DRAINS)
    count_outbox(result.dispatched, result.failed)
    if result.handed_off:
        worker.tasks.drain_push()
    if result.touched:
        worker.tasks.deliver_webhooks()  # deliveries were probably queued: send them now, not at the next tick
        log.info("outbox drained", extra={"dispatched": result.dispatched, "failed": result.failed,
                                          "deferred": result.deferred, "handed_off": result.handed_off})
    return {"dispatched": result.dispatched, "failed": result.failed, "deferred": result.deferred}


@shared_task(name=DRAIN_PUSH, **RETRY_OPTIONS)
def drain_push() -> dict[str, int]:
    """The calendar pushes handed off by the dispatch (and retries that are due)."""
    worker = wiring.current()
    result = outbox.drain_separate(worker.store, worker.handlers, wiring.CALENDAR_PUSH, settings=worker.settings)
    if result.touched:
        log.info("calendar pushes drained", extra={"done": result.dispatched, "failed": result.failed,
                                                   "deferred": result.deferred})
    return {"done": result.dispatched, "failed": result.failed, "deferred": result.deferred}
