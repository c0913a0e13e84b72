"""Microsoft tasks: the hourly subscription renewal, and the outbox hook that stops subscriptions
when a connection needs re-consent.

The webhook-triggered sync is the shared ``calbook.google.sync`` task (a generic incremental
sync that waits for a running one), and opening subscriptions is the shared watch task
(``calbook.google.watch``), which hands Microsoft connections to
``worker.calendar.microsoft.ensure_subscriptions``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from booking_engine.clock import utcnow
from booking_engine.ports import TaskQueue
from booking_engine.services import microsoft_subscriptions
from booking_engine.store.db import Store
from worker.calendar import microsoft as microsoft_worker
from worker.outbox import OutboxEvent, register_handler
from worker.runtime import get_store, get_tasks
from worker.tasks.retry import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

RENEW_TASK = "calbook.microsoft.renew_subscriptions"


def renew_subscriptions(store: Store, queue: TaskQueue) -> int:
    """Queue a watch for each Microsoft connection whose subscriptions are past half-life (or missing)."""
    due = microsoft_subscriptions.connections_to_renew(store, microsoft_worker.renew_before(utcnow()))
    for connection_id in due:
        queue.watch(connection_id)
    if due:
        log.info("microsoft subscription renewal queued", extra={"connections": len(due)})
    return len(due)


@shared_task(name=RENEW_TASK, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=3, acks_late=True)
def microsoft_renew_subscriptions() -> int:
    return renew_subscriptions(get_store(), get_tasks())


@register_handler("connection.reauth_required", name="microsoft-reauth-subscriptions")
def stop_subscriptions_on_reauth(store: Store, event: OutboxEvent) -> None:
    """Whichever path hit ``invalid_grant`` (sync, push, renewal), its subscriptions stop here too."""
    if event.payload.get("provider") == "microsoft":
        microsoft_worker.stop_subscriptions(store, event.payload["connectionId"], call_graph=False)
