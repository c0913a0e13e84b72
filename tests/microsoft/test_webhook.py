"""Change notifications: the handshake, notifications, forged clientState, lifecycle events, renewal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import watch_channels
from config.settings import Settings
from tests.support.api import auth
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import EXPERT, WEBHOOK, WORK, RecordingQueue, busy, event, subscriptions
from worker import wiring
from worker.tasks.microsoft import renew_subscriptions


def _post(client: TestClient, items: list[dict[str, Any]]) -> None:
    response = client.post(WEBHOOK, json={"value": items})
    assert response.status_code == 202 and response.content == b""


def _sub(fake: FakeGraph) -> dict[str, Any]:
    (sub,) = fake.subscriptions.values()
    return dict(sub)


def test_validation_handshake_echoes_the_token_as_text(client: TestClient) -> None:
    response = client.post(WEBHOOK, params={"validationToken": "Validation: Testing client application <x&y>"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Validation: Testing client application <x&y>"


def test_a_notification_queues_one_coalesced_sync(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                                  queue: RecordingQueue) -> None:
    fake.put_event(WORK, event(1, 9))
    items = fake.change_items(WORK, "created")
    _post(client, items + items)  # Graph batches: two items of one connection
    _post(client, items)  # and a second POST before the sync ran
    assert queue.syncs() == 1
    assert queue.run()[0][2] == "active"
    assert len(busy(client)) == 1


def test_forged_client_state_and_unknown_subscriptions_change_nothing(
    connected: dict[str, Any], client: TestClient, fake: FakeGraph, queue: RecordingQueue,
) -> None:
    sub = _sub(fake)
    _post(client, [{"subscriptionId": sub["id"], "clientState": sub["clientState"] + "x", "changeType": "updated"}])
    _post(client, [{"subscriptionId": sub["id"], "changeType": "updated"}])
    _post(client, [{"subscriptionId": "nope", "clientState": sub["clientState"], "changeType": "updated"}])
    _post(client, [{"subscriptionId": sub["id"], "clientState": "forged", "lifecycleEvent": "subscriptionRemoved"}])
    assert client.post(WEBHOOK, content=b"not json", headers={"content-type": "application/json"}).status_code == 202
    assert queue.queued == []


def test_reauthorization_required_renews_the_subscription(
    connected: dict[str, Any], client: TestClient, fake: FakeGraph, queue: RecordingQueue, store: Store,
) -> None:
    sub = _sub(fake)
    _post(client, [{"subscriptionId": sub["id"], "clientState": sub["clientState"],
                    "lifecycleEvent": "reauthorizationRequired"}])
    assert queue.queued == [("watch", connected["id"])]
    fake.log.clear()
    assert queue.run()[0][2] == "active"
    assert [(m, p) for m, p in fake.log] == [("PATCH", f"subscriptions/{sub['id']}")]
    (row,) = subscriptions(store, connected["id"], live=True)
    assert row["id"] == sub["id"] and row["expiration"].replace(tzinfo=None) > (utcnow() + timedelta(days=2)
                                                                                ).replace(tzinfo=None)


def test_subscription_removed_recreates_it_and_syncs(
    connected: dict[str, Any], client: TestClient, fake: FakeGraph, queue: RecordingQueue, store: Store,
) -> None:
    sub = _sub(fake)
    with fake.lock:
        fake.subscriptions.clear()
    _post(client, [{"subscriptionId": sub["id"], "clientState": sub["clientState"],
                    "lifecycleEvent": "subscriptionRemoved"}])
    assert sorted(kind for kind, _ in queue.queued) == ["sync", "watch"]
    queue.run()
    (row,) = subscriptions(store, connected["id"], live=True)
    assert row["id"] != sub["id"] and len(fake.subscriptions) == 1


def test_missed_runs_a_delta_sync(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                  queue: RecordingQueue) -> None:
    fake.put_event(WORK, event(2, 9))
    sub = _sub(fake)
    _post(client, [{"subscriptionId": sub["id"], "clientState": sub["clientState"], "lifecycleEvent": "missed"}])
    assert queue.queued == [("sync", connected["id"])]
    queue.run()
    assert len(busy(client)) == 1


def test_renewal_at_half_life_and_404_recreates(
    settings: Settings, connected: dict[str, Any], fake: FakeGraph, queue: RecordingQueue, store: Store,
) -> None:
    assert renew_subscriptions(store, queue, settings) == 0  # fresh: nothing due
    sub = _sub(fake)
    with store.write() as conn:  # less than half of its 4,230 minutes left
        conn.execute(update(watch_channels).values(expiration=utcnow() + timedelta(minutes=2000)))
    assert renew_subscriptions(store, queue, settings) == 1
    fake.log.clear()
    queue.run()
    assert [m for m, _ in fake.log] == ["PATCH"]
    assert renew_subscriptions(store, queue, settings) == 0

    with store.write() as conn:
        conn.execute(update(watch_channels).values(expiration=utcnow() + timedelta(minutes=60)))
    with fake.lock:
        fake.subscriptions.clear()  # Graph lost it: the renewal answers 404
    assert renew_subscriptions(store, queue, settings) == 1
    queue.run()
    (row,) = subscriptions(store, connected["id"], live=True)
    assert row["id"] != sub["id"] and len(fake.subscriptions) == 1


def test_disconnect_deletes_the_subscriptions(
    settings: Settings, connected: dict[str, Any], client: TestClient, fake: FakeGraph, store: Store,
) -> None:
    assert len(fake.subscriptions) == 1
    assert client.delete(f"/v1/calendar-connections/{connected['id']}", headers=auth(EXPERT)).status_code == 204
    wiring.drain_outbox(store, settings, budget_seconds=10)
    assert fake.subscriptions == {}
    assert subscriptions(store, connected["id"], live=True) == []


def test_the_backstop_poll_covers_lost_notifications(connected: dict[str, Any], store: Store) -> None:
    from booking_engine.services import connections as connection_service

    # Just synced: due again at the backstop (6 h, shortened by up to 20% jitter), not before.
    assert connected["id"] not in connection_service.due_connections(store, now=utcnow() + timedelta(hours=4))
    assert connected["id"] in connection_service.due_connections(store, now=utcnow() + timedelta(hours=6, minutes=1))
