"""Outbox dispatch in-process, on SQLite and PostgreSQL: order, once-only, leases, retries."""

from __future__ import annotations

import threading
from datetime import timedelta

import time_machine
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from tests.factories import NOW
from tests.worker.scenario import book, next_slot, parties
from worker import outbox as ob


def _recorder(seen: list[ob.OutboxEvent]) -> ob.Handler:
    lock = threading.Lock()

    def record(_store: Store, event: ob.OutboxEvent) -> None:
        with lock:
            seen.append(event)

    return record


def test_dispatch_in_creation_order_once(store: Store) -> None:
    ob.HANDLERS.clear()
    seen: list[ob.OutboxEvent] = []
    ob.add_handler(["*"], _recorder(seen), name="rec")
    parties(store)
    for day in range(1, 4):
        book(store, next_slot(day, 10), confirm=True)
    with store.read() as conn:
        ids = [r[0] for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]
    with time_machine.travel(NOW, tick=True):
        result = ob.drain(store)
        assert result.dispatched == len(ids) == 6
        assert [e.id for e in seen] == ids
        assert ob.drain(store).touched == 0
    assert len(seen) == 6
    assert ob.pending_count(store) == 0


def test_concurrent_claims_never_overlap(store: Store) -> None:
    ob.HANDLERS.clear()
    seen: list[ob.OutboxEvent] = []
    ob.add_handler(["*"], _recorder(seen), name="rec")
    parties(store)
    for day in range(1, 11):
        book(store, next_slot(day, 10))
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        while ob.dispatch_batch(store, limit=2).touched:
            pass

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.event_id for e in seen) == sorted({e.event_id for e in seen})
    assert len(seen) == 10
    assert ob.pending_count(store) == 0


def test_expired_lease_is_claimed_again(store: Store) -> None:
    parties(store)
    book(store, next_slot(1, 10))
    with time_machine.travel(NOW, tick=False):
        first = ob.claim(store, 10, timedelta(seconds=30))
        assert [e.event_type for e in first] == ["booking.created"]
        assert ob.claim(store, 10, timedelta(seconds=30)) == []  # leased: nobody else gets it
    # The claiming worker died; after the lease another one picks the row up.
    again = ob.claim(store, 10, timedelta(seconds=30), now=NOW + timedelta(seconds=31))
    assert [e.event_id for e in again] == [first[0].event_id]
    assert again[0].attempts == 2


def test_failing_handler_is_retried_alone_with_backoff(store: Store) -> None:
    ob.HANDLERS.clear()
    ok_runs: list[ob.OutboxEvent] = []
    flaky_runs: list[ob.OutboxEvent] = []

    def flaky(_store: Store, event: ob.OutboxEvent) -> None:
        flaky_runs.append(event)
        if len(flaky_runs) == 1:
            raise ConnectionError("smtp down")

    ob.add_handler(["booking.created"], _recorder(ok_runs), name="ok")
    ob.add_handler(["booking.created"], flaky, name="flaky")
    parties(store)
    book(store, next_slot(1, 10))
    with time_machine.travel(NOW, tick=False):
        result = ob.dispatch_batch(store)
        assert (result.dispatched, result.failed) == (0, 1)
        with store.read() as conn:
            row = conn.execute(select(outbox)).mappings().one()
        assert row["dispatched_at"] is None and "smtp down" in row["last_error"]
        assert row["claimed_until"] > utcnow()  # backoff: not due again right away
        assert ob.dispatch_batch(store).touched == 0
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert ob.dispatch_batch(store).dispatched == 1
    assert len(ok_runs) == 1  # the handler that had finished did not run again
    assert len(flaky_runs) == 2
    assert ob.pending_count(store) == 0


def test_registration_replaces_by_name_and_wildcard_applies() -> None:
    ob.HANDLERS.clear()

    @ob.register_handler("booking.confirmed", name="push")
    def push(_s: Store, _e: ob.OutboxEvent) -> None: ...

    @ob.register_handler("booking.confirmed", name="push")
    def push_v2(_s: Store, _e: ob.OutboxEvent) -> None: ...

    ob.add_handler(["*"], push, name="all")
    assert [r.name for r in ob.handlers_for("booking.confirmed")] == ["push", "all"]
    assert ob.handlers_for("booking.confirmed")[0].handler is push_v2
    assert [r.name for r in ob.handlers_for("booking.completed")] == ["all"]
