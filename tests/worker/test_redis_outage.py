"""Fault test: Redis dies under load and comes back; the worker keeps processing.

Real parts only: a private ``redis-server`` (never the shared one), a real ``celery worker``
with embedded beat on PostgreSQL, a real webhook receiver. Bookings keep arriving while the
broker is killed (SIGKILL) twice and restarted on the same port; the worker must reconnect
on its own, stay alive, and deliver every event (docs/worker.md#broker-outages).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from booking_engine.services import bookings
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import webhook_deliveries
from tests.support.db import truncate_all
from tests.support.factories import NOW
from tests.support.redis_server import PrivateRedis
from tests.support.scenario import EXPERT, USER, book, next_slot, parties, subscribe
from tests.support.worker import Receiver, WorkerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

OUTAGES = 3
EVENTS = ["booking.created", "booking.cancelled"]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def _succeeded(store: Store) -> int:
    with store.read() as conn:
        return sum(1 for r in conn.execute(select(webhook_deliveries.c.status)) if r[0] == "succeeded")


def _alive(worker: WorkerProcess) -> bool:
    if worker.proc.poll() is not None:
        raise AssertionError(f"the worker exited with {worker.proc.returncode}")
    return True


def _announced(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.event_type.in_(EVENTS))).all())


def test_worker_survives_redis_outages_under_load(
    pg_url: str, pg_store: Store, private_redis: PrivateRedis, tmp_path: Path, receiver: Receiver,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    truncate_all(pg_store)
    parties(pg_store)
    receiver.secret = subscribe(pg_store, EXPERT, receiver.url, EVENTS)
    receiver.delay = 0.02
    slots = [next_slot(day, hour) for day in range(1, 29) for hour in (9, 13)]
    stop_load = threading.Event()

    def load() -> None:
        """Book and cancel, round the slots, until told to stop: events keep coming throughout."""
        n = 0
        while not stop_load.is_set():
            booking = book(pg_store, slots[n % len(slots)])
            bookings.cancel_booking(pg_store, USER, booking.id, "load", now=NOW)
            n += 1
            time.sleep(0.05)

    worker = start_worker({"CALBOOK_DATABASE_URL": pg_url, "CALBOOK_BROKER_URL": private_redis.url,
                           "CALBOOK_DATA_DIR": str(tmp_path / "outage")}, concurrency=4, lean=False)
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        for outage in range(OUTAGES):
            floor = _succeeded(pg_store)
            wait_until(lambda f=floor: _alive(worker) and _succeeded(pg_store) > f + 3, 90,
                       f"deliveries before outage {outage}")
            private_redis.kill()
            time.sleep(3)  # the worker notices, its consumer and beat fail to reach the broker
            private_redis.start()
        stop_load.set()
        loader.join(30)
        assert not loader.is_alive()
        total = _announced(pg_store)
        assert total > 20
        wait_until(lambda: _alive(worker) and _succeeded(pg_store) == total, 120, "every delivery after the outages")
        assert worker.proc.poll() is None, "the worker exited"
    except AssertionError:
        print(worker.log_text()[-8000:])
        raise
    finally:
        stop_load.set()
    log_text = worker.log_text()
    assert "Unrecoverable error" not in log_text
    assert {r.event_id for r in receiver.successes()} and all(r.signature_ok for r in receiver.snapshot())
