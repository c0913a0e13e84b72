"""Microsoft tasks: the hourly subscription renewal.

The webhook-triggered sync is the shared ``calbook.google.sync`` task (a generic incremental
sync that waits for a running one), and opening subscriptions is the shared watch task
(``calbook.google.watch``), which runs the Microsoft row of ``worker.wiring.PROVIDERS``; that
row also stops the subscriptions on disconnect and on ``connection.reauth_required``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from booking_engine.clock import utcnow
from booking_engine.ports import TaskQueue
from booking_engine.services import microsoft_subscriptions
from booking_engine.store.db import Store
from config.settings import Settings
from worker import wiring
from worker.calendar import microsoft as microsoft_worker
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)

RENEW_TASK = "calbook.microsoft.renew_subscriptions"


def renew_subscriptions(store: Store, queue: TaskQueue, settings: Settings) -> int:
    """Queue a watch for each Microsoft connection whose subscriptions are past half-life (or missing)."""
    due = microsoft_subscriptions.connections_to_renew(store, microsoft_worker.renew_before(utcnow(), settings))
    for connection_id in due:
        queue.watch(connection_id)
    if due:
        log.info("microsoft subscription renewal queued", extra={"connections": len(due)})
    return len(due)


@shared_task(name=RENEW_TASK, **RETRY_OPTIONS)
def microsoft_renew_subscriptions() -> int:
    worker = wiring.current()
    return renew_subscriptions(worker.store, worker.tasks, worker.settings)
