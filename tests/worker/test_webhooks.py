"""Outbound webhooks in-process: fan-out to owners, signatures, retries, the delivery log."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.worker_tables import webhook_deliveries, webhook_delivery_attempts
from config.settings import Settings
from tests.support.factories import NOW
from tests.support.scenario import EXPERT, USER, book, next_slot, parties, redispatch_everything, subscribe
from tests.support.worker import Receiver
from worker import outbox, wiring
from worker.notifications import webhooks


def _deliveries(store: Store) -> list[dict]:
    with store.read() as conn:
        return [dict(r) for r in conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).mappings()]


def test_sign_and_verify_roundtrip() -> None:
    body = b'{"id":"e1"}'
    header = webhooks.sign("whsec_x", 1_900_000_000, body)
    assert header.startswith("t=1900000000,v1=")
    assert webhooks.verify("whsec_x", header, body, now=1_900_000_010)
    assert not webhooks.verify("whsec_y", header, body, now=1_900_000_010)
    assert not webhooks.verify("whsec_x", header, body + b" ", now=1_900_000_010)
    assert not webhooks.verify("whsec_x", header, body, now=1_900_000_000 + 3600)  # replayed later
    assert not webhooks.verify("whsec_x", "garbage", body)


def test_owners_subscriptions_get_signed_events_once(store: Store, receiver: Receiver) -> None:
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url)
    subscribe(store, "stranger", receiver.url)  # not a party: hears nothing
    subscribe(store, USER, receiver.url + "?user", ["booking.cancelled"])  # the user wants cancellations only
    booking = book(store, next_slot(1, 10), confirm=True)
    wiring.drain_outbox(store, Settings())
    assert webhooks.deliver_due(store, settings=Settings()) == 2
    got = receiver.snapshot()
    assert [r.body["type"] for r in got] == ["booking.created", "booking.confirmed"]
    assert all(r.signature_ok and r.status == 200 for r in got)
    assert got[0].body["data"]["booking"]["id"] == booking.id
    assert set(got[0].body) == {"id", "type", "createdAt", "data"}
    assert got[0].event_id == got[0].body["id"]
    # A redelivered outbox event adds no delivery, and a delivered one is never sent again.
    redispatch_everything(store)
    wiring.drain_outbox(store, Settings())
    assert webhooks.deliver_due(store, settings=Settings()) == 0
    assert len(receiver.snapshot()) == 2
    assert [d["status"] for d in _deliveries(store)] == ["succeeded", "succeeded"]


def test_server_errors_are_retried_with_backoff_until_one_success(store: Store, receiver: Receiver) -> None:
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url, ["booking.created"])
    receiver.fail_first = 3
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    moment = utcnow()
    for step in range(10):
        with time_machine.travel(moment + timedelta(minutes=step), tick=False):
            webhooks.deliver_due(store, settings=Settings())
    assert [r.status for r in receiver.snapshot()] == [500, 500, 500, 200]
    assert len({r.event_id for r in receiver.snapshot()}) == 1
    [delivery] = _deliveries(store)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("succeeded", 4, 200)
    with store.read() as conn:
        codes = [r[0] for r in conn.execute(select(webhook_delivery_attempts.c.status_code)
                                            .order_by(webhook_delivery_attempts.c.id))]
    assert codes == [500, 500, 500, 200]


def test_a_failed_attempt_waits_for_its_backoff(store: Store, receiver: Receiver) -> None:
    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url, ["booking.created"])
    receiver.fail_first = 1
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    with time_machine.travel(utcnow(), tick=False):
        assert webhooks.deliver_due(store, settings=Settings()) == 1
        assert webhooks.deliver_due(store, settings=Settings()) == 0  # not due yet: no hammering
        [delivery] = _deliveries(store)
        assert delivery["next_attempt_at"] > utcnow()


def test_retries_stop_after_the_window(store: Store) -> None:
    parties(store)
    # Nothing listens on this port: every attempt is a connection error.
    subscribe(store, EXPERT, "http://127.0.0.1:9/hook", ["booking.created"])
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    start = utcnow()
    statuses = []
    for hour in range(0, 30):
        with time_machine.travel(start + timedelta(hours=hour), tick=False):
            webhooks.deliver_due(store, client=httpx.Client(timeout=1), settings=Settings())
            statuses.append(_deliveries(store)[0]["status"])
    assert statuses[0] == "pending"
    assert statuses[-1] == "failed"
    assert "failed" not in statuses[:23]


def test_retry_delay_grows_and_is_capped() -> None:
    delays = [webhooks.retry_delay(n, Settings().worker.webhook_retry()) for n in range(1, 30)]
    assert 0.1 <= delays[0] <= 0.2
    assert delays[5] > delays[0]
    assert max(delays) <= 3600


def test_deleted_subscription_cancels_delivery(store: Store, receiver: Receiver) -> None:
    from booking_engine.services import webhook_subscriptions

    parties(store)
    receiver.secret = subscribe(store, EXPERT, receiver.url, ["booking.created"])
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    [sub] = webhook_subscriptions.list_subscriptions(store, EXPERT)
    webhook_subscriptions.delete_subscription(store, EXPERT, sub["id"])
    webhooks.deliver_due(store, settings=Settings())
    assert receiver.snapshot() == []
    assert _deliveries(store)[0]["status"] == "cancelled"


def test_body_is_stable_json(store: Store) -> None:
    event = outbox.OutboxEvent(1, "e-1", "booking.created", "b-1", {"booking": {"id": "b-1"}}, NOW, 1)
    body = webhooks.body_for(event)
    assert json.loads(body) == {"id": "e-1", "type": "booking.created", "createdAt": "2030-03-04T08:00:00Z",
                                "data": {"booking": {"id": "b-1"}}}
    assert body == webhooks.body_for(event)


def test_a_url_that_now_resolves_to_a_private_address_is_not_sent(
    store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API checked the URL at subscription time; DNS changed since (rebinding): the worker checks
    again, sends nothing, and ends the delivery ``failed`` with the reason, without retries."""
    import socket

    from config.settings import Settings

    real = socket.getaddrinfo
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])

    def rebound(host: str, *args: object, **kwargs: object) -> object:
        # hooks.example.com now points at the receiver on 127.0.0.1; every other name resolves as usual.
        return real("127.0.0.1" if host == "hooks.example.com" else host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "false")
    parties(store)
    receiver.secret = subscribe(store, EXPERT, f"http://hooks.example.com:{port}/hook", ["booking.created"])
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    assert webhooks.deliver_due(store, settings=Settings()) == 1
    assert receiver.snapshot() == []
    [delivery] = _deliveries(store)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, None)
    assert "private or local network address" in delivery["last_error"]
    with store.read() as conn:
        [(code, error)] = conn.execute(select(webhook_delivery_attempts.c.status_code,
                                              webhook_delivery_attempts.c.error)).all()
    assert code is None and error == delivery["last_error"]
    with time_machine.travel(utcnow() + timedelta(hours=1), tick=False):
        assert webhooks.deliver_due(store, settings=Settings()) == 0  # permanent for this delivery: no retries

    # A self-hoster who allows private URLs gets the same delivery of the next event.
    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "true")
    book(store, next_slot(2, 10))
    wiring.drain_outbox(store, Settings())
    assert webhooks.deliver_due(store, settings=Settings()) == 1
    assert [r.status for r in receiver.snapshot()] == [200]


def test_a_host_that_stops_resolving_is_retried(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer from DNS may be an outage, not a verdict: a network error, retried with backoff."""

    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "false")
    parties(store)
    subscribe(store, EXPERT, "https://calbook-test.invalid/hook", ["booking.created"])
    book(store, next_slot(1, 10))
    wiring.drain_outbox(store, Settings())
    assert webhooks.deliver_due(store, settings=Settings()) == 1
    [delivery] = _deliveries(store)
    assert delivery["status"] == "pending" and "does not resolve" in delivery["last_error"]
