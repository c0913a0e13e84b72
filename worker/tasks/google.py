"""Google tasks: webhook-triggered sync, watch and hourly channel renewal.

* ``calbook.google.sync`` - kept for messages queued before the sync dispatcher: an incremental
  sync after a notification. Notifications now make the connection due and kick the dispatcher
  (docs/sync.md#scheduling); a request arriving during a sync makes it due again when it ends.
* ``calbook.google.watch`` - open or renew the change notifications of one connection (its
  provider's ``watch`` row in ``worker.wiring.PROVIDERS``: Google channels, Microsoft subscriptions).
* ``calbook.google.renew_channels`` - hourly: queue ``watch`` for every connection with a
  channel expiring within a day or without any channel.

Stopping the channels on ``connection.reauth_required`` and on disconnect is the Google row of
``worker.wiring.PROVIDERS``.

Transient errors (429, 5xx, rate-limit 403, network) retry with exponential backoff and
jitter, after the provider's own short retries; ``invalid_grant`` is never retried: the
connection goes to ``reauth_required``, its channels stop, and the expert is notified.
"""

from __future__ import annotations

import logging

from celery import shared_task

from booking_engine.clock import utcnow
from booking_engine.connections import ConnectionStatus
from booking_engine.ports import TaskQueue
from booking_engine.services import google_channels
from booking_engine.store.db import Store
from config.settings import Settings
from config.task_sender import SYNC_CHANGED, WATCH
from worker import wiring
from worker.calendar import google as google_worker
from worker.tasks.retry import CALENDAR_RETRY_OPTIONS, RETRY_OPTIONS

log = logging.getLogger(__name__)

RENEW_TASK = "calbook.google.renew_channels"
LOCKED_RETRY_SECONDS = 2
LOCKED_RETRIES = 30


def sync_after_notification(store: Store, connection_id: str, *, settings: Settings, queue: TaskQueue) -> str:
    """Run the incremental sync; stop the channels when the grant turned out to be revoked."""
    outcome = wiring.sync_connection(store, connection_id, settings)
    if outcome.status == ConnectionStatus.REAUTH_REQUIRED:
        google_worker.stop_channels(store, connection_id, settings=settings, call_google=False)
    if outcome.flagged:
        queue.drain_outbox()
    return outcome.status


@shared_task(name=SYNC_CHANGED, bind=True, **CALENDAR_RETRY_OPTIONS)
def google_sync(self, connection_id: str) -> str:  # type: ignore[no-untyped-def]
    worker = wiring.current()
    status = sync_after_notification(worker.store, connection_id, settings=worker.settings, queue=worker.tasks)
    if status == "locked" and self.request.retries < LOCKED_RETRIES:
        # Another sync is running; it may have read the calendar before this change.
        raise self.retry(countdown=LOCKED_RETRY_SECONDS, max_retries=LOCKED_RETRIES)
    return status


@shared_task(name=WATCH, **CALENDAR_RETRY_OPTIONS)
def google_watch(connection_id: str) -> str:
    """Any provider's watch step (Google channels, Microsoft subscriptions: ``wiring.PROVIDERS``)."""
    worker = wiring.current()
    status = wiring.watch_connection(worker.store, connection_id, worker.settings)
    if status == ConnectionStatus.REAUTH_REQUIRED:
        worker.tasks.drain_outbox()
    return status


def renew_channels(store: Store, queue: TaskQueue) -> int:
    """Queue a watch for each connection whose channels need renewing (or that has none)."""
    due = google_channels.connections_to_watch(store, utcnow() + google_worker.RENEW_WITHIN)
    for connection_id in due:
        queue.watch(connection_id)
    if due:
        log.info("google channel renewal queued", extra={"connections": len(due)})
    return len(due)


@shared_task(name=RENEW_TASK, **RETRY_OPTIONS)
def google_renew_channels() -> int:
    worker = wiring.current()
    return renew_channels(worker.store, worker.tasks)
