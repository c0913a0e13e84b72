"""The sync dispatcher: claim due connections and queue one sync task for each (decision 0023).

Work reaches the sync workers in batches claimed from the due index, never in one huge tick:
a pass claims at most ``CALBOOK_WORKER_SYNC_DISPATCH_BATCH`` connections per statement and
keeps no more than ``CALBOOK_WORKER_SYNC_MAX_IN_FLIGHT`` queued or running (their sync lease
holds), so ten thousand due at once flow through at the rate the workers take them, and a
claim never outlives its message by much. Who runs a pass:

* beat's ``calendar-sync`` tick, every ``CALBOOK_WORKER_SYNC_DISPATCH_INTERVAL_SECONDS`` (30 s);
* a kick for one connection (``POST .../sync``, a connect, a change notification): that
  connection is claimed first, whatever the cap, then a pass runs;
* each sync task when it ends: it claims one replacement (``at_most=1``), so the pipeline
  stays full between ticks.

The claim is the lease (``connections.claim_due_syncs``): two dispatchers never claim the same
connection, and the sync task takes the lease over with the claim's token, so a connection is
never queued twice while its claim holds. A message that cannot be sent gives its claim back.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Protocol

from booking_engine.services import connections as connection_service
from booking_engine.services.connections import SyncClaim
from booking_engine.store.db import Store
from config.settings import WorkerSection

log = logging.getLogger(__name__)


class ClaimSender(Protocol):
    """The part of the task sender the dispatcher needs (``config.task_sender.CeleryTaskQueue``)."""

    def sync_claimed(self, claim: SyncClaim) -> bool: ...


def _send(store: Store, tasks: ClaimSender, claims: list[SyncClaim]) -> int:
    sent = 0
    for claim in claims:
        if tasks.sync_claimed(claim):
            sent += 1
        else:
            connection_service.give_back_claim(store, claim)
    return sent


def dispatch_due_syncs(
    store: Store, tasks: ClaimSender, knobs: WorkerSection, *, connection_id: str | None = None,
    at_most: int | None = None, budget_seconds: float = 10.0,
) -> int:
    """Claim and queue due syncs up to the in-flight cap (and ``at_most``); the number queued."""
    lease = timedelta(seconds=knobs.sync_lease_seconds)
    queued = 0
    if connection_id is not None:
        queued += _send(store, tasks, connection_service.claim_due_syncs(store, 1, lease, connection_id=connection_id))
    stop = time.monotonic() + budget_seconds
    while True:
        room = knobs.sync_max_in_flight - connection_service.syncs_in_flight(store)
        want = min(knobs.sync_dispatch_batch, room)
        if at_most is not None:
            want = min(want, at_most - queued)
        if want <= 0:
            break
        claims = connection_service.claim_due_syncs(store, want, lease)
        queued += _send(store, tasks, claims)
        if len(claims) < want or time.monotonic() > stop:
            break
    if queued:
        log.info("calendar syncs queued", extra={"queued": queued, "connection_id": connection_id})
    return queued
