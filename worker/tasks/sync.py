"""Calendar tasks: sync one connection, sync what is due, push booking events, clean up.

``calbook.sync.connection`` retries transient provider errors with exponential backoff and
jitter; authentication and permanent errors are recorded on the connection and end there.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task

from booking_engine.connections import POLLED, Provider
from booking_engine.ports import TaskQueue
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.task_sender import SYNC
from connectors.base import TransientError
from worker.calendar import google as google_worker
from worker.calendar import microsoft as microsoft_worker
from worker.calendar import push
from worker.calendar.sync import sync_connection as run_sync
from worker.outbox import OutboxEvent, register_handler
from worker.runtime import get_store, get_tasks
from worker.schedule import CALENDAR_SYNC_SECONDS
from worker.tasks.retry import RETRY_OPTIONS, TRANSIENT_ERRORS

log = logging.getLogger(__name__)

PERIODIC_INTERVAL_SECONDS = CALENDAR_SYNC_SECONDS
PERIODIC_JITTER_SECONDS = 60
# Google connections are pushed by webhooks; polling them is only a slow backstop.
BACKSTOP_INTERVAL_SECONDS = 6 * 3600


@shared_task(
    name=SYNC,
    bind=True,
    autoretry_for=(TransientError, *TRANSIENT_ERRORS),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    reject_on_worker_lost=True,
)
def sync_connection(self, connection_id: str, reconcile: bool = False) -> str:  # type: ignore[no-untyped-def]
    outcome = run_sync(get_store(), connection_id, force_reconcile=reconcile)
    if outcome.flagged:
        get_tasks().drain_outbox()
    return outcome.status


def queue_due_syncs(store: Store, tasks: TaskQueue) -> int:
    """Queue a sync for each due connection, spread over a minute (jitter)."""
    polled = connection_service.due_for_sync(store, timedelta(seconds=PERIODIC_INTERVAL_SECONDS), providers=POLLED)
    backstop = connection_service.due_for_sync(
        store, timedelta(seconds=BACKSTOP_INTERVAL_SECONDS), providers=(Provider.GOOGLE, Provider.MICROSOFT)
    )
    for connection_id in [*polled, *backstop]:
        tasks.sync(connection_id, countdown=random.uniform(0, PERIODIC_JITTER_SECONDS))
    return len(polled) + len(backstop)


@shared_task(name="calbook.sync.due_connections", **RETRY_OPTIONS)
def sync_due_connections() -> int:
    """Every 5 minutes: queue the due syncs."""
    return queue_due_syncs(get_store(), get_tasks())


@register_handler("booking.confirmed", "booking.rescheduled", "booking.cancelled", name="calendar-push")
def push_to_calendars(store: Store, event: OutboxEvent) -> None:
    push.handle_push_event(store, event.payload, event.aggregate_id)


@register_handler("connection.disconnected", name="connection-cleanup")
def cleanup_connection(store: Store, event: OutboxEvent) -> None:
    """After a disconnect: the provider's own cleanup runs first (``DISCONNECT_HOOKS``: Google stops
    its channels, which needs the credentials), then the credentials are wiped. A transient
    failure propagates and the outbox retries the whole cleanup later."""
    connection_id = event.payload["connectionId"]
    hook = DISCONNECT_HOOKS.get(str(event.payload.get("provider")))
    if hook is not None:
        hook(store, connection_id)
    connection_service.forget_credentials(store, connection_id)


DISCONNECT_HOOKS: dict[str, Callable[[Store, str], object]] = {
    Provider.GOOGLE: google_worker.stop_channels,
    Provider.MICROSOFT: microsoft_worker.stop_subscriptions,
}
"""Per provider, what a disconnect must undo at the provider before the credentials go."""
