"""Separate queues (docs/worker.md#queues): each task goes to its queue, a worker serving only
``notify`` delivers e-mail whatever the sync backlog, and the calendar push runs in its own drain.

Real Redis, real ``celery worker`` processes and a real SMTP server; the push drain in process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import outbox_handler_runs
from config.settings import Settings
from config.task_sender import (
    DELIVER_WEBHOOKS,
    DISPATCH_OUTBOX,
    DISPATCH_SYNCS,
    DRAIN_PUSH,
    NOTIFY_QUEUE,
    PUSH_QUEUE,
    QUEUE,
    SYNC,
    SYNC_QUEUE,
    WATCH,
    CeleryTaskQueue,
    resolve_queues,
)
from tests.support.db import truncate_all
from tests.support.scenario import EXPERT_EMAIL, USER_EMAIL, book, next_slot, parties
from tests.support.worker import Mailbox, WorkerProcess, wait_until
from worker import outbox as ob
from worker import wiring

EXPECTED = {
    SYNC: SYNC_QUEUE, "calbook.google.sync": SYNC_QUEUE, WATCH: SYNC_QUEUE,
    DRAIN_PUSH: PUSH_QUEUE,
    DISPATCH_OUTBOX: NOTIFY_QUEUE, DELIVER_WEBHOOKS: NOTIFY_QUEUE,
    DISPATCH_SYNCS: QUEUE, "calbook.bookings.send_reminders": QUEUE, "calbook.maintenance.prune": QUEUE,
}


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


def test_the_worker_app_routes_each_task_to_its_queue() -> None:
    from worker.app import celery_app

    for task, queue in EXPECTED.items():
        assert task in celery_app.tasks, task
        assert celery_app.amqp.router.route({}, task)["queue"].name == queue, task
    assert {q.name for q in celery_app.conf.task_queues} == {QUEUE, SYNC_QUEUE, PUSH_QUEUE, NOTIFY_QUEUE}
    # Every periodic task goes where beat's message will be routed: the ticks of notify on notify.
    schedule = wiring.beat_schedule(Settings())
    assert celery_app.amqp.router.route({}, schedule["outbox-dispatch"]["task"])["queue"].name == NOTIFY_QUEUE
    assert celery_app.amqp.router.route({}, schedule["calendar-push"]["task"])["queue"].name == PUSH_QUEUE


def test_the_sender_publishes_each_task_to_its_queue(redis_broker: str) -> None:
    sender = CeleryTaskQueue(redis_broker)
    client = redis.Redis.from_url(redis_broker)
    try:
        for task in EXPECTED:
            assert sender.send(task, "x")
        lengths = {q: client.llen(q) for q in (QUEUE, SYNC_QUEUE, PUSH_QUEUE, NOTIFY_QUEUE)}
    finally:
        client.close()
    want = {q: sum(1 for v in EXPECTED.values() if v == q) for q in lengths}
    assert lengths == want


def test_queue_names_for_the_worker_command() -> None:
    assert resolve_queues("sync,push") == [SYNC_QUEUE, PUSH_QUEUE]
    assert resolve_queues("all") == resolve_queues(None) == [SYNC_QUEUE, PUSH_QUEUE, NOTIFY_QUEUE, QUEUE]
    assert resolve_queues("notify, calbook") == [NOTIFY_QUEUE, QUEUE]
    with pytest.raises(ValueError, match="unknown queue 'mail'"):
        resolve_queues("notify,mail")


@pytest.mark.slow
def test_a_notify_worker_delivers_mail_while_a_sync_backlog_waits(
    pg_url: str, pg_store: Store, redis_broker: str, tmp_path: Path, smtp: tuple[str, Mailbox],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    truncate_all(pg_store)
    smtp_url, mailbox = smtp
    sender = CeleryTaskQueue(redis_broker)
    for i in range(50):  # a backlog of syncs no worker serves
        assert sender.send(SYNC, f"missing-{i}")
    parties(pg_store)
    book(pg_store, next_slot(1, 10), confirm=True)
    worker = start_worker({"CALBOOK_DATABASE_URL": pg_url, "CALBOOK_BROKER_URL": redis_broker,
                           "CALBOOK_DATA_DIR": str(tmp_path / "notify"), "CALBOOK_SMTP_URL": smtp_url},
                          queues="notify,default")
    try:
        wait_until(lambda: len(mailbox.snapshot()) >= 2, 90, "the confirmation e-mails")
    except AssertionError:
        print(worker.log_text()[-5000:])
        raise
    assert sorted(rcpt[0] for rcpt, _ in mailbox.snapshot()) == sorted([EXPERT_EMAIL, USER_EMAIL])
    client = redis.Redis.from_url(redis_broker)
    try:
        assert client.llen(SYNC_QUEUE) == 50  # untouched: nobody serves it, and nothing waited for it
    finally:
        client.close()


def test_the_dispatch_hands_the_push_off_and_the_push_drain_runs_it(store: Store) -> None:
    pushed: list[str] = []
    mailed: list[str] = []
    lock = threading.Lock()

    def mail(_store: Store, event: ob.OutboxEvent) -> None:
        with lock:
            mailed.append(event.event_type)

    def push(_store: Store, event: ob.OutboxEvent) -> None:
        with lock:
            pushed.append(event.event_type)

    table = {"email": ob.OutboxHandler(("*",), mail),
             wiring.CALENDAR_PUSH: ob.OutboxHandler(wiring.BOOKING_CHANGES, push)}
    parties(store)
    book(store, next_slot(1, 10), confirm=True)  # booking.created, booking.confirmed
    settings = Settings()
    result = ob.drain(store, table, settings=settings, separate=wiring.SEPARATE_DRAINS)
    assert sorted(mailed) == ["booking.confirmed", "booking.created"] and pushed == []
    assert result.handed_off == 1 and result.dispatched == 1  # created is done; confirmed waits for its push
    with store.read() as conn:
        runs = conn.execute(select(outbox_handler_runs.c.handler, outbox_handler_runs.c.status)
                            .where(outbox_handler_runs.c.handler == wiring.CALENDAR_PUSH)).all()
        assert [tuple(r) for r in runs] == [(wiring.CALENDAR_PUSH, "pending")]
    assert ob.pending_count(store) == 1

    done = ob.drain_separate(store, table, wiring.CALENDAR_PUSH, settings=settings)
    assert done.dispatched == 1 and pushed == ["booking.confirmed"]
    assert ob.pending_count(store) == 0  # the push was the event's last handler: dispatched
    assert ob.drain_separate(store, table, wiring.CALENDAR_PUSH, settings=settings).touched == 0
    assert ob.drain(store, table, settings=settings, separate=wiring.SEPARATE_DRAINS).touched == 0
    assert sorted(mailed) == ["booking.confirmed", "booking.created"] and pushed == ["booking.confirmed"]
    with store.read() as conn:
        assert conn.execute(select(outbox.c.dispatched_at).where(outbox.c.dispatched_at.is_(None))).first() is None


def test_a_failed_push_is_retried_by_its_drain_alone(store: Store) -> None:
    calls: list[str] = []

    def mail(_store: Store, event: ob.OutboxEvent) -> None:
        calls.append("mail")

    def push(_store: Store, event: ob.OutboxEvent) -> None:
        calls.append("push")
        if calls.count("push") == 1:
            raise RuntimeError("calendar server said no")

    table = {"email": ob.OutboxHandler(("booking.confirmed",), mail),
             wiring.CALENDAR_PUSH: ob.OutboxHandler(("booking.confirmed",), push)}
    parties(store)
    book(store, next_slot(1, 10), confirm=True)
    settings = Settings()
    ob.drain(store, table, settings=settings, separate=wiring.SEPARATE_DRAINS)
    assert ob.drain_separate(store, table, wiring.CALENDAR_PUSH, settings=settings).failed == 1
    assert ob.drain_separate(store, table, wiring.CALENDAR_PUSH, settings=settings).touched == 0  # backing off
    assert ob.pending_count(store) == 1
    with store.write() as conn:  # its backoff has passed
        conn.execute(outbox_handler_runs.update().where(outbox_handler_runs.c.status == "pending")
                     .values(next_attempt_at=utcnow()))
    assert ob.drain_separate(store, table, wiring.CALENDAR_PUSH, settings=settings).dispatched == 1
    assert calls == ["mail", "push", "push"]
    assert ob.pending_count(store) == 0
