"""Retention on SQLite and PostgreSQL: old finished bookkeeping goes, anything pending stays."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import (
    outbox_handler_runs,
    webhook_deliveries,
    webhook_delivery_attempts,
)
from config.settings import Settings
from tests.support.factories import NOW
from tests.support.scenario import EXPERT, book, next_slot, parties, subscribe
from tests.support.worker import Receiver
from worker import retention, wiring
from worker.notifications import webhooks

KEEP = timedelta(days=30)  # CALBOOK_WORKER_RETENTION_DAYS


def _count(store: Store, table, *where) -> int:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_prune_keeps_recent_and_pending_rows(store: Store, receiver: Receiver) -> None:
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url)
    with time_machine.travel(NOW, tick=False):
        book(store, next_slot(1, 10), confirm=True)
        wiring.drain_outbox(store, Settings())
        assert webhooks.deliver_due(store, settings=Settings()) == 2
    with time_machine.travel(NOW + timedelta(days=20), tick=False):
        book(store, next_slot(22, 10))  # newer and never dispatched: must survive any prune
    assert _count(store, outbox) == 3 and _count(store, webhook_deliveries) == 2

    # Within the window nothing goes.
    assert retention.as_dict(retention.prune(store, KEEP, now=NOW + timedelta(days=29))) == {
        "outbox": 0, "deliveries": 0, "notifications": 0}

    result = retention.prune(store, KEEP, now=NOW + timedelta(days=31))
    assert (result.outbox, result.deliveries) == (2, 2)
    assert _count(store, outbox) == 1
    assert _count(store, outbox, outbox.c.dispatched_at.is_(None)) == 1
    assert _count(store, outbox_handler_runs) == 0
    assert _count(store, webhook_deliveries) == 0 and _count(store, webhook_delivery_attempts) == 0
    # Idempotent: a second run finds nothing more.
    assert retention.prune(store, KEEP, now=NOW + timedelta(days=31)).outbox == 0


def test_pending_delivery_is_never_pruned(store: Store) -> None:
    parties(store)
    subscribe(store, EXPERT, "http://127.0.0.1:9/never")
    with time_machine.travel(NOW, tick=False):
        book(store, next_slot(1, 10))
        wiring.drain_outbox(store, Settings())
    assert _count(store, webhook_deliveries, webhook_deliveries.c.status == "pending") == 1
    retention.prune(store, KEEP, now=NOW + timedelta(days=400))
    assert _count(store, webhook_deliveries) == 1


def test_old_email_idempotency_keys_go(store: Store) -> None:
    from sqlalchemy import insert

    from booking_engine.store.worker_tables import notification_log

    rows = [
        {"idempotency_key": f"k{i}", "channel": "email", "event_id": f"e{i}", "event_type": "booking.created",
         "recipient": "a@example.com", "status": "sent", "created_at": NOW + timedelta(days=i * 20)}
        for i in range(3)
    ]
    with store.write() as conn:
        conn.execute(insert(notification_log), rows)
    assert retention.prune(store, KEEP, now=NOW + timedelta(days=45)).notifications == 1  # only the one of day 0
    assert _count(store, notification_log) == 2
