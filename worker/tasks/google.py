"""Google tasks: webhook-triggered sync, watch and hourly channel renewal, cleanup hooks.

* ``calbook.google.sync`` - an incremental sync queued by a push notification. When another
  sync holds the connection's lease, it retries shortly instead of dropping the change (the
  running sync may have read the calendar before the change happened).
* ``calbook.google.watch`` - open or renew the channels of one connection.
* ``calbook.google.renew_channels`` - hourly: queue ``watch`` for every connection with a
  channel expiring within a day or without any channel.

Transient errors (429, 5xx, rate-limit 403, network) retry with exponential backoff and
jitter, after the provider's own short retries; ``invalid_grant`` is never retried: the
connection goes to ``reauth_required``, its channels stop, and the expert is notified.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from booking_engine.clock import utcnow
from booking_engine.connections import ConnectionStatus
from booking_engine.ports import TaskQueue
from booking_engine.services import google_channels
from booking_engine.store.db import Store
from config.task_sender import SYNC_CHANGED, WATCH
from connectors.base import TransientError
from worker.calendar import google as google_worker
from worker.calendar.sync import sync_connection as run_sync
from worker.outbox import OutboxEvent, register_handler
from worker.runtime import get_store, get_tasks
from worker.tasks.retry import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

RENEW_TASK = "calbook.google.renew_channels"
LOCKED_RETRY_SECONDS = 2
LOCKED_RETRIES = 30

_RETRYING: dict[str, Any] = {
    "autoretry_for": (TransientError, *TRANSIENT_ERRORS),
    "retry_backoff": 2,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


def sync_after_notification(store: Store, connection_id: str) -> str:
    """Run the incremental sync; stop the channels when the grant turned out to be revoked."""
    outcome = run_sync(store, connection_id)
    if outcome.status == ConnectionStatus.REAUTH_REQUIRED:
        google_worker.stop_channels(store, connection_id, call_google=False)
    if outcome.flagged:
        get_tasks().drain_outbox()
    return outcome.status


@shared_task(name=SYNC_CHANGED, bind=True, **_RETRYING)
def google_sync(self, connection_id: str) -> str:  # type: ignore[no-untyped-def]
    status = sync_after_notification(get_store(), connection_id)
    if status == "locked" and self.request.retries < LOCKED_RETRIES:
        # Another sync is running; it may have read the calendar before this change.
        raise self.retry(countdown=LOCKED_RETRY_SECONDS, max_retries=LOCKED_RETRIES)
    return status


@shared_task(name=WATCH, **_RETRYING)
def google_watch(connection_id: str) -> str:
    from worker.calendar import microsoft as microsoft_worker  # Microsoft subscriptions share this task

    if microsoft_worker.is_microsoft(get_store(), connection_id):
        ms = microsoft_worker.ensure_subscriptions(get_store(), connection_id)
        if ms.status == ConnectionStatus.REAUTH_REQUIRED:
            get_tasks().drain_outbox()
        return ms.status
    outcome = google_worker.ensure_watches(get_store(), connection_id)
    if outcome.status == ConnectionStatus.REAUTH_REQUIRED:
        get_tasks().drain_outbox()
    return outcome.status


def renew_channels(store: Store, queue: TaskQueue) -> int:
    """Queue a watch for each connection whose channels need renewing (or that has none)."""
    due = google_channels.connections_to_watch(store, utcnow() + google_worker.RENEW_WITHIN)
    for connection_id in due:
        queue.watch(connection_id)
    if due:
        log.info("google channel renewal queued", extra={"connections": len(due)})
    return len(due)


@shared_task(name=RENEW_TASK, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=3, acks_late=True)
def google_renew_channels() -> int:
    return renew_channels(get_store(), get_tasks())


@register_handler("connection.reauth_required", name="google-reauth-channels")
def stop_channels_on_reauth(store: Store, event: OutboxEvent) -> None:
    """Whichever path hit ``invalid_grant`` (sync, push, watch), its channels stop here too."""
    if event.payload.get("provider") == "google":
        google_worker.stop_channels(store, event.payload["connectionId"], call_google=False)

