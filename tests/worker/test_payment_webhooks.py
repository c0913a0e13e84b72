"""booking.paid, booking.payment_expired and booking.refund_due through a real worker, exactly once each,
on both databases (docs/lifecycle.md#payment-hold, docs/lifecycle.md#refunds): the worker's beat releases
the unpaid booking on its own, and a redelivery of every outbox event sends nothing twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.services import bookings, service_keys
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import webhook_deliveries
from tests.support.db import truncate_all
from tests.support.scenario import EXPERT, USER, parties, redispatch_everything, subscribe
from tests.support.worker import Receiver, WorkerProcess, wait_until

pytestmark = pytest.mark.slow
WATCHED = ["booking.paid", "booking.payment_expired", "booking.refund_due"]


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, dict[str, str]]]:
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        env = {"CALBOOK_DATABASE_URL": url, "CALBOOK_DATA_DIR": str(tmp_path / "embedded")}
        store = Store.from_url(url)
        yield store, env
        store.dispose()
        return
    url = request.getfixturevalue("pg_url")
    pg_store: Store = request.getfixturevalue("pg_store")
    truncate_all(pg_store)
    broker = request.getfixturevalue("redis_url")
    redis.Redis.from_url(broker).flushdb()
    yield pg_store, {"CALBOOK_DATABASE_URL": url, "CALBOOK_BROKER_URL": broker, "CALBOOK_DATA_DIR": str(tmp_path / "r")}
    redis.Redis.from_url(broker).flushdb()


def _undispatched(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.dispatched_at.is_(None))).all())


def test_payment_events_arrive_once_each(
    setup: tuple[Store, dict[str, str]], receiver: Receiver, start_worker: Callable[..., WorkerProcess]
) -> None:
    store, env = setup
    now = utcnow()
    parties(store, now=now - timedelta(hours=1), paymentRequired=True, paymentHoldMinutes=5, autoConfirm=True)
    receiver.secret = subscribe(store, EXPERT, receiver.url, WATCHED)
    key = service_keys.create_key(store, "payments", ["payments"])[1]
    tomorrow = (now + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    paid = bookings.create_booking(store, USER, EXPERT, tomorrow, 60, "video_call")
    bookings.record_payment(store, service_keys.authenticate(store, key), paid.id, "pi_42", 6000, "USD")
    bookings.cancel_booking(store, EXPERT, paid.id, "the expert is ill")
    # Booked ten minutes ago with a five-minute hold: already due, and left for the worker's beat to release.
    unpaid = bookings.create_booking(store, USER, EXPERT, tomorrow + timedelta(hours=3), 60, "video_call",
                                     now=now - timedelta(minutes=10))
    worker = start_worker({**env, "CALBOOK_WORKER_PAYMENT_EXPIRY_INTERVAL_SECONDS": "0.5"})
    try:
        wait_until(lambda: len(receiver.successes()) >= 3, 90, "the three payment webhooks")
        redispatch_everything(store)  # at-least-once dispatch: every event handled again
        wait_until(lambda: _undispatched(store) == 0, 90, "the redelivered events handled")
        wait_until(lambda: _undispatched(store) == 0, 5, "nothing left")
    except AssertionError:
        print(worker.log_text()[-5000:])
        raise
    with store.read() as conn:
        deliveries = [r[0] for r in conn.execute(select(webhook_deliveries.c.status))]
    assert deliveries == ["succeeded"] * 3  # one delivery per event, however often it was dispatched
    got = receiver.successes()
    assert Counter(r.body["type"] for r in got) == Counter(WATCHED)
    assert all(r.signature_ok for r in receiver.snapshot())
    by_type = {r.body["type"]: r.body["data"] for r in got}
    assert by_type["booking.paid"]["paymentId"] == "pi_42" and by_type["booking.paid"]["booking"]["id"] == paid.id
    due = by_type["booking.refund_due"]
    assert (due["paymentId"], due["refundCents"], due["currency"], due["booking"]["id"]) == (
        "pi_42", 6000, "USD", paid.id)
    expired = by_type["booking.payment_expired"]["booking"]
    assert (expired["id"], expired["status"], expired["cancellationReason"]) == (
        unpaid.id, "cancelled", "payment_not_received")
    assert bookings.get_booking(store, USER, unpaid.id).status == "cancelled"
