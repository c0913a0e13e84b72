"""Calendar tasks: the sync dispatcher, and the sync of one claimed connection (docs/sync.md#scheduling).

* ``calbook.sync.dispatch`` (default queue) - beat's tick every 30 s and the kicks of the API:
  claims due connections in batches, up to the in-flight cap, and queues a sync for each
  (``worker.calendar.dispatch``, decision 0023). With a connection id, that one first.
* ``calbook.sync.connection`` (``calbook.sync``) - one connection's sync, holding the claim's
  lease. Provider errors are not retried by Celery: they are recorded on the connection, whose
  own backoff (``sync_failures``) makes it due again later; auth and permanent errors end
  there too. Only infrastructure trouble (the database, the broker) is retried by the task.
  When it ends, it claims one replacement, so the pipeline stays full between ticks.

The outbox handlers that push bookings and clean up after a disconnect are in ``worker.wiring``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task

from config.task_sender import DISPATCH_SYNCS, SYNC
from connectors.base import TransientError
from worker import wiring
from worker.calendar.dispatch import dispatch_due_syncs
from worker.tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)


@shared_task(name=SYNC, bind=True, **RETRY_OPTIONS)
def sync_connection(self, connection_id: str, reconcile: bool = False,  # type: ignore[no-untyped-def]
                    lease_until: str | None = None) -> str:
    worker = wiring.current()
    token = datetime.fromisoformat(lease_until) if lease_until else None
    try:
        outcome = wiring.sync_connection(worker.store, connection_id, worker.settings, force_reconcile=reconcile,
                                         lease_token=token)
        status = outcome.status
    except TransientError:
        status = "transient_error"  # recorded on the connection; its backoff is the retry
    else:
        if outcome.flagged or status == "reauth_required":
            worker.tasks.drain_outbox()  # conflict or reauth events were written
    if status != "locked":
        dispatch_due_syncs(worker.store, worker.tasks, worker.settings.worker, at_most=1)
    return status


@shared_task(name=DISPATCH_SYNCS, **RETRY_OPTIONS)
def dispatch_syncs(connection_id: str | None = None) -> int:
    """Claim due connections (``connection_id`` first) and queue their syncs."""
    worker = wiring.current()
    return dispatch_due_syncs(worker.store, worker.tasks, worker.settings.worker, connection_id=connection_id)
