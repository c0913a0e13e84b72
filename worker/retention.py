"""Retention: delete delivery bookkeeping nobody needs any more, so the tables stay small.

What goes, once older than ``CALBOOK_WORKER_RETENTION_DAYS`` (30 by default):
- dispatched outbox rows and their ``outbox_handler_runs``;
- webhook deliveries that ended (succeeded, failed, cancelled) and their attempt log;
- the ``notification_log`` idempotency keys of e-mails.

Nothing that is still pending is touched. The idempotency keys may go with their events:
an event older than the retention window was dispatched long ago and is gone from the
outbox, so no redelivery can ask for its key again. Deletes run in small batches (short
write transactions), so the SQLite writer lock is never held for long.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import (
    notification_log,
    outbox_handler_runs,
    webhook_deliveries,
    webhook_delivery_attempts,
)

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(slots=True)
class Pruned:
    outbox: int = 0
    deliveries: int = 0
    notifications: int = 0


def _prune_outbox(store: Store, cutoff: datetime) -> int:
    total = 0
    while True:
        with store.write() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.event_id)
                .where(outbox.c.dispatched_at.is_not(None), outbox.c.dispatched_at < cutoff)
                .order_by(outbox.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return total
            conn.execute(delete(outbox_handler_runs).where(outbox_handler_runs.c.event_id.in_([r[1] for r in rows])))
            conn.execute(delete(outbox).where(outbox.c.id.in_([r[0] for r in rows])))
            total += len(rows)


def _prune_deliveries(store: Store, cutoff: datetime) -> int:
    total = 0
    while True:
        with store.write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(webhook_deliveries.c.id)
                    .where(webhook_deliveries.c.status != "pending", webhook_deliveries.c.created_at < cutoff)
                    .order_by(webhook_deliveries.c.id)
                    .limit(BATCH)
                )
            ]
            if not ids:
                return total
            conn.execute(delete(webhook_delivery_attempts).where(webhook_delivery_attempts.c.delivery_id.in_(ids)))
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids)))
            total += len(ids)


def _prune_notifications(store: Store, cutoff: datetime) -> int:
    total = 0
    while True:
        with store.write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(notification_log.c.id)
                    .where(notification_log.c.created_at < cutoff)
                    .order_by(notification_log.c.id)
                    .limit(BATCH)
                )
            ]
            if not ids:
                return total
            conn.execute(delete(notification_log).where(notification_log.c.id.in_(ids)))
            total += len(ids)


def prune(store: Store, keep: timedelta, now: datetime | None = None) -> Pruned:
    """Delete the bookkeeping older than ``keep`` (``CALBOOK_WORKER_RETENTION_DAYS``)."""
    moment = now or utcnow()
    cutoff = moment - keep
    result = Pruned(
        outbox=_prune_outbox(store, cutoff),
        deliveries=_prune_deliveries(store, cutoff),
        notifications=_prune_notifications(store, cutoff),
    )
    log.info("retention pruned old rows", extra={"outbox": result.outbox, "deliveries": result.deliveries,
                                                  "notifications": result.notifications})
    return result


def as_dict(result: Pruned) -> dict[str, Any]:
    return {"outbox": result.outbox, "deliveries": result.deliveries, "notifications": result.notifications}
