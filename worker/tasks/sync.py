"""Calendar tasks: sync one connection, and queue the syncs that are due.

``calbook.sync.connection`` retries transient provider errors with exponential backoff and
jitter (``CALENDAR_RETRY_OPTIONS``); authentication and permanent errors are recorded on the
connection and end there. The outbox handlers that push bookings and clean up after a
disconnect are in ``worker.wiring``'s table.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task

from booking_engine.connections import POLLED, Provider
from booking_engine.ports import TaskQueue
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.task_sender import SYNC
from worker import wiring
from worker.tasks.retry import CALENDAR_RETRY_OPTIONS, RETRY_OPTIONS

log = logging.getLogger(__name__)

PERIODIC_INTERVAL_SECONDS = wiring.CALENDAR_SYNC_SECONDS
PERIODIC_JITTER_SECONDS = 60
# Google connections are pushed by webhooks; polling them is only a slow backstop.
BACKSTOP_INTERVAL_SECONDS = 6 * 3600


@shared_task(name=SYNC, bind=True, **CALENDAR_RETRY_OPTIONS)
def sync_connection(self, connection_id: str, reconcile: bool = False) -> str:  # type: ignore[no-untyped-def]
    worker = wiring.current()
    outcome = wiring.sync_connection(worker.store, connection_id, worker.settings, force_reconcile=reconcile)
    if outcome.flagged:
        worker.tasks.drain_outbox()
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
    worker = wiring.current()
    return queue_due_syncs(worker.store, worker.tasks)
