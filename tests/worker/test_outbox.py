"""Outbox dispatch in-process, on SQLite and PostgreSQL: order, once-only, leases, retries."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import outbox_handler_runs
from config.settings import Settings
from tests.support.factories import NOW
from tests.support.scenario import book, next_slot, parties
from worker import outbox as ob
from worker import wiring

LEASE = timedelta(minutes=10)


def _recorder(seen: list[ob.OutboxEvent]) -> ob.Handler:
    lock = threading.Lock()

    def record(_store: Store, event: ob.OutboxEvent) -> None:
        with lock:
            seen.append(event)

    return record


def test_dispatch_in_creation_order_once(store: Store) -> None:
    table: dict[str, ob.OutboxHandler] = {}
    seen: list[ob.OutboxEvent] = []
    table["rec"] = ob.OutboxHandler(("*",), _recorder(seen))
    parties(store)
    for day in range(1, 4):
        book(store, next_slot(day, 10), confirm=True)
    with store.read() as conn:
        ids = [r[0] for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]
    with time_machine.travel(NOW, tick=True):
        result = ob.drain(store, table, settings=Settings())
        assert result.dispatched == len(ids) == 6
        assert [e.id for e in seen] == ids
        assert ob.drain(store, table, settings=Settings()).touched == 0
    assert len(seen) == 6
    assert ob.pending_count(store) == 0


def test_concurrent_claims_never_overlap(store: Store) -> None:
    table: dict[str, ob.OutboxHandler] = {}
    seen: list[ob.OutboxEvent] = []
    table["rec"] = ob.OutboxHandler(("*",), _recorder(seen))
    parties(store)
    for day in range(1, 11):
        book(store, next_slot(day, 10))
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        while ob.dispatch_batch(store, table, settings=Settings(), limit=2).touched:
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
        first = ob.claim(store, 10, timedelta(seconds=30), settings=Settings())
        assert [e.event_type for e in first] == ["booking.created"]
        assert ob.claim(store, 10, timedelta(seconds=30), settings=Settings()) == []  # leased: nobody else gets it
    # The claiming worker died; after the lease another one picks the row up.
    again = ob.claim(store, 10, timedelta(seconds=30), settings=Settings(), now=NOW + timedelta(seconds=31))
    assert [e.event_id for e in again] == [first[0].event_id]
    assert again[0].attempts == 2


def test_failing_handler_is_retried_alone_with_backoff(store: Store) -> None:
    table: dict[str, ob.OutboxHandler] = {}
    ok_runs: list[ob.OutboxEvent] = []
    flaky_runs: list[ob.OutboxEvent] = []

    def flaky(_store: Store, event: ob.OutboxEvent) -> None:
        flaky_runs.append(event)
        if len(flaky_runs) == 1:
            raise ConnectionError("smtp down")

    table["ok"] = ob.OutboxHandler(("booking.created",), _recorder(ok_runs))
    table["flaky"] = ob.OutboxHandler(("booking.created",), flaky)
    parties(store)
    book(store, next_slot(1, 10))
    with time_machine.travel(NOW, tick=False):
        result = ob.dispatch_batch(store, table, settings=Settings())
        assert (result.dispatched, result.failed) == (0, 1)
        with store.read() as conn:
            row = conn.execute(select(outbox)).mappings().one()
        assert row["dispatched_at"] is None and "smtp down" in row["last_error"]
        assert row["claimed_until"] > utcnow()  # backoff: not due again right away
        assert ob.dispatch_batch(store, table, settings=Settings()).touched == 0
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert ob.dispatch_batch(store, table, settings=Settings()).dispatched == 1
    assert len(ok_runs) == 1  # the handler that had finished did not run again
    assert len(flaky_runs) == 2
    assert ob.pending_count(store) == 0


def test_handler_table_in_order_and_wildcard_applies() -> None:
    def push(_s: Store, _e: ob.OutboxEvent) -> None: ...

    def everything(_s: Store, _e: ob.OutboxEvent) -> None: ...

    table = {"push": ob.OutboxHandler(("booking.confirmed",), push), "all": ob.OutboxHandler(("*",), everything)}
    assert [r.name for r in ob.handlers_for(table, "booking.confirmed")] == ["push", "all"]
    assert ob.handlers_for(table, "booking.confirmed")[0].handler is push
    assert [r.name for r in ob.handlers_for(table, "booking.completed")] == ["all"]


def test_the_worker_table_names_every_handler_once() -> None:
    table = wiring.outbox_handlers(Settings())
    assert list(table) == ["email", "webhooks", "calendar-push", "connection-cleanup", "reauth-cleanup"]
    assert [r.name for r in ob.handlers_for(table, "booking.confirmed")] == ["email", "webhooks", "calendar-push"]
    assert [r.name for r in ob.handlers_for(table, "connection.disconnected")] == ["webhooks", "connection-cleanup"]


def _runs(store: Store) -> dict[tuple[str, str], tuple[str, int]]:
    with store.read() as conn:
        rows = conn.execute(select(outbox_handler_runs)).mappings().all()
    return {(r["event_id"], r["handler"]): (r["status"], r["attempts"]) for r in rows}


def test_each_handler_has_its_own_attempts_and_outcome(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that always fails (a bad value) is retried and given up alone; the other
    handlers of the same events run once, at once, and the events end dispatched."""
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_MAX_ATTEMPTS", "3")
    table: dict[str, ob.OutboxHandler] = {}
    hooks: list[ob.OutboxEvent] = []
    broken: list[ob.OutboxEvent] = []

    def bad_mail(_store: Store, event: ob.OutboxEvent) -> None:
        broken.append(event)
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    table["email"] = ob.OutboxHandler(("booking.created",), bad_mail)
    table["webhooks"] = ob.OutboxHandler(("*",), _recorder(hooks))
    parties(store)
    for day in (1, 2):
        book(store, next_slot(day, 10))
    with store.read() as conn:
        events = [r[0] for r in conn.execute(select(outbox.c.event_id).order_by(outbox.c.id))]
    moment = NOW
    with time_machine.travel(moment, tick=False):
        first = ob.drain(store, table, settings=Settings())
    assert (first.dispatched, first.failed) == (0, 2)
    assert sorted(e.event_id for e in hooks) == sorted(events)  # webhooks did not wait for e-mail
    for _ in range(10):
        moment += timedelta(hours=2)
        with time_machine.travel(moment, tick=False):
            ob.drain(store, table, settings=Settings())
    assert ob.pending_count(store) == 0
    assert len(hooks) == 2 and len(broken) == 6  # 3 attempts each, then given up
    runs = _runs(store)
    assert {runs[(e, "webhooks")] for e in events} == {("done", 1)}
    assert {runs[(e, "email")] for e in events} == {("failed", 3)}
    with store.read() as conn:
        errors = [r[0] for r in conn.execute(select(outbox_handler_runs.c.last_error)
                                             .where(outbox_handler_runs.c.handler == "email"))]
        last = [r[0] for r in conn.execute(select(outbox.c.last_error))]
    assert all(e.startswith("gave up: ValueError") for e in errors)
    assert all("email: ValueError" in e for e in last)


def test_an_outage_is_tried_once_per_batch_not_once_per_event(store: Store) -> None:
    """SMTP refusing connections: one attempt per batch; every other handler keeps flowing."""
    table: dict[str, ob.OutboxHandler] = {}
    hooks: list[ob.OutboxEvent] = []
    smtp_calls: list[ob.OutboxEvent] = []

    def smtp_down(_store: Store, event: ob.OutboxEvent) -> None:
        smtp_calls.append(event)
        raise ConnectionRefusedError(111, "Connection refused")

    table["email"] = ob.OutboxHandler(("*",), smtp_down)
    table["webhooks"] = ob.OutboxHandler(("*",), _recorder(hooks))
    parties(store)
    for day in range(1, 6):
        book(store, next_slot(day, 10))
    with time_machine.travel(NOW, tick=False):
        result = ob.dispatch_batch(store, table, settings=Settings())
    assert len(smtp_calls) == 1 and len(hooks) == 5
    assert (result.failed, result.deferred, result.dispatched) == (1, 4, 0)
    runs = _runs(store)
    assert [status for (_, name), status in runs.items() if name == "email"] == [("pending", 1)]
    # The four deferred events wait with the failed one: nothing is claimable until then.
    with store.read() as conn:
        waits = {r[0] for r in conn.execute(select(outbox.c.claimed_until))}
    assert len(waits) == 1 and min(waits) > NOW
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        table.clear()
        table["email"] = ob.OutboxHandler(("*",), _recorder(smtp_calls))  # SMTP is back
        table["webhooks"] = ob.OutboxHandler(("*",), _recorder(hooks))
        assert ob.drain(store, table, settings=Settings()).dispatched == 5
    assert len(hooks) == 5 and len(smtp_calls) == 6
    assert ob.pending_count(store) == 0


def test_a_restarted_worker_takes_back_its_predecessors_leases(store: Store) -> None:
    parties(store)
    book(store, next_slot(1, 10))
    heartbeats.register(store, "celery@w/old", "celery@w", 1)
    claimed = ob.claim(store, 10, LEASE, holder="celery@w/old", settings=Settings())
    assert len(claimed) == 1 and ob.claim(store, 10, LEASE, holder="celery@v/1", settings=Settings()) == []
    # The same node starts again (its old process was killed): the lease is freed at once.
    previous = heartbeats.register(store, "celery@w/new", "celery@w", 2)
    assert ob.release_leases_of(store, previous) == 1
    assert [e.event_id for e in ob.claim(store, 10, LEASE, holder="celery@w/new", settings=Settings())] == [
        claimed[0].event_id]


def test_a_lease_whose_holder_stopped_beating_is_claimable(store: Store) -> None:
    parties(store)
    book(store, next_slot(1, 10))
    heartbeats.register(store, "celery@gone/1", "celery@gone", 1, now=utcnow() - timedelta(minutes=5))
    ob.claim(store, 10, LEASE, holder="celery@gone/1", settings=Settings())
    heartbeats.register(store, "celery@alive/1", "celery@alive", 2)
    assert len(ob.claim(store, 10, LEASE, holder="celery@alive/1", settings=Settings())) == 1
    assert ob.claim(store, 10, LEASE, holder="celery@other/1", settings=Settings()) == []  # the live holder keeps it
