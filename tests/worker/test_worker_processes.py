"""End to end with real ``celery worker`` processes (beat embedded, as ``calbook serve`` runs it).

The test process writes bookings through the services, exactly as the API would; the worker
processes find the outbox rows on their own (beat's dispatch tick) and deliver e-mail to a
real SMTP server and webhooks to a real HTTP receiver that checks every signature.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import webhook_deliveries
from tests.support.db import truncate_all
from tests.support.scenario import EXPERT, EXPERT_EMAIL, USER_EMAIL, book, next_slot, parties, subscribe
from tests.support.worker import Mailbox, Receiver, WorkerProcess, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[str]:
    """The Redis database of this test run (``CALBOOK_TEST_REDIS_URL``), emptied before and after."""
    url = redis_url
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _event_ids(store: Store, event_type: str) -> set[str]:
    with store.read() as conn:
        return {r[0] for r in conn.execute(select(outbox.c.event_id).where(outbox.c.event_type == event_type))}


def _delivery_statuses(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(webhook_deliveries.c.status))]


def test_embedded_broker_delivers_mail_and_webhooks(
    sqlite_url: str, tmp_path: Path, smtp: tuple[str, Mailbox], receiver: Receiver,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    smtp_url, mailbox = smtp
    store = Store.from_url(sqlite_url)
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url)
    booking = book(store, next_slot(1, 10), confirm=True)
    worker = start_worker({"CALBOOK_DATABASE_URL": sqlite_url, "CALBOOK_DATA_DIR": str(tmp_path / "embedded"),
                           "CALBOOK_SMTP_URL": smtp_url})
    try:
        wait_until(lambda: len(mailbox.snapshot()) >= 2 and len(receiver.successes()) >= 2, 90,
                   "mail and webhooks through the embedded broker")
    except AssertionError:
        print(worker.log_text()[-5000:])
        raise
    assert "sqla+sqlite" in worker.log_text()
    assert sorted((rcpt[0], msg["Subject"].split(":")[0]) for rcpt, msg in mailbox.snapshot()) == [
        (EXPERT_EMAIL, "New booking"), (USER_EMAIL, "Booking confirmed")]
    got = receiver.snapshot()
    assert sorted(r.body["type"] for r in got) == ["booking.confirmed", "booking.created"]
    assert all(r.signature_ok for r in got)
    assert {r.body["data"]["booking"]["id"] for r in got} == {booking.id}
    store.dispose()


def test_redis_and_postgres_retry_until_one_success(
    pg_url: str, pg_store: Store, redis_broker: str, tmp_path: Path, receiver: Receiver,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    truncate_all(pg_store)
    parties(pg_store)
    receiver.secret = subscribe(pg_store, EXPERT, receiver.url, ["booking.created"])
    receiver.fail_first = 3
    book(pg_store, next_slot(1, 10))
    worker = start_worker({"CALBOOK_DATABASE_URL": pg_url, "CALBOOK_BROKER_URL": redis_broker,
                           "CALBOOK_DATA_DIR": str(tmp_path / "redis")})
    try:
        wait_until(lambda: _delivery_statuses(pg_store) == ["succeeded"], 90, "a successful delivery")
    except AssertionError:
        print(worker.log_text()[-5000:])
        raise
    assert [r.status for r in receiver.snapshot()] == [500, 500, 500, 200]
    assert len(receiver.successes()) == 1
    assert "Connected to worker.broker:RedisTransport://" in worker.log_text()  # Redis, through worker.broker


def test_kill_9_mid_dispatch_every_event_arrives_once_by_key(
    sqlite_url: str, redis_broker: str, tmp_path: Path, receiver: Receiver,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    store = Store.from_url(sqlite_url)
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url, ["booking.created"])
    for day in range(1, 13):
        book(store, next_slot(day, 10))
    expected = _event_ids(store, "booking.created")
    receiver.hold, receiver.hold_after = threading.Event(), 4  # the 5th POST hangs: the worker is mid-delivery
    env = {"CALBOOK_DATABASE_URL": sqlite_url, "CALBOOK_BROKER_URL": redis_broker,
           "CALBOOK_DATA_DIR": str(tmp_path / "fault")}
    first = start_worker(env, name="doomed")
    wait_until(lambda: len(receiver.snapshot()) >= 5, 90, "the worker to be mid-delivery")
    first.kill9()
    receiver.hold.set()
    before_restart = {r.event_id for r in receiver.snapshot()}
    assert before_restart < expected  # the kill left work undone
    second = start_worker(env, name="survivor")
    try:
        wait_until(lambda: _delivery_statuses(store).count("succeeded") == len(expected), 90, "every delivery")
    except AssertionError:
        print(second.log_text()[-5000:])
        raise
    counts = Counter(r.event_id for r in receiver.snapshot())
    assert set(counts) == expected
    assert all(r.signature_ok for r in receiver.snapshot())
    # Only a POST in flight at the kill (one per pool process, two here) may arrive twice,
    # and receivers deduplicate it on the key; everything else arrives exactly once.
    repeated = {key for key, n in counts.items() if n > 1}
    assert len(repeated) <= 2 and repeated <= before_restart
    assert all(counts[k] == 2 for k in repeated)
    store.dispose()
