"""The webhook receiver, coalescing, channel renewal and disconnect, through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import watch_channels
from config.settings import Settings
from tests.support.api import auth
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    EXPERT,
    RecordingQueue,
    busy_times,
    channels,
    connect,
    fake_channel,
    google_event,
    notify,
)
from tests.support.google_oauth import FakeGoogleOAuth
from worker import wiring
from worker.tasks.google import renew_channels


@pytest.fixture
def channel(connected: dict[str, Any], store: Store, fake: FakeGoogleCalendar) -> dict[str, Any]:
    (row,) = channels(store, connected["id"], live=True)
    return fake_channel(fake, row["id"])


def test_good_token_queues_a_sync_that_brings_the_change(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue,
    connected: dict[str, Any],
) -> None:
    assert busy_times(client) == []
    fake.add_event(ACCOUNT, google_event(2, 9))

    response = notify(client, channel, channel["token"])

    assert response.status_code == 200 and response.content == b""
    assert queue.queued == [("sync", connected["id"])]
    queue.run()
    assert len(busy_times(client)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"token": "wrong-token"},
        {"token": None},
        {"id": "unknown-channel"},
        {"resourceId": "another-resource"},
        {"state": "sync"},
    ],
    ids=["wrong-token", "missing-token", "unknown-channel", "wrong-resource", "sync-handshake"],
)
def test_other_notifications_are_acknowledged_and_ignored(
    client: TestClient, channel: dict[str, Any], queue: RecordingQueue, change: dict[str, Any]
) -> None:
    change = dict(change)  # the parameter is shared by the SQLite and PostgreSQL runs
    token = change.pop("token", channel["token"])
    state = change.pop("state", "exists")

    response = notify(client, {**channel, **change}, token, state=state)

    assert response.status_code == 200 and response.content == b""
    assert queue.queued == []


def test_not_exists_also_queues(client: TestClient, channel: dict[str, Any], queue: RecordingQueue) -> None:
    notify(client, channel, channel["token"], state="not_exists")
    assert queue.syncs() == 1


def test_a_burst_of_notifications_queues_one_sync(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue
) -> None:
    for number in range(10):
        fake.add_event(ACCOUNT, google_event(2, 9 + number % 8))
        assert notify(client, channel, channel["token"], number=number).status_code == 200

    assert queue.syncs() == 1
    queue.run()
    (merged,) = busy_times(client)  # back-to-back hours 09:00-17:00: all eight changes arrived
    assert (merged["start"][11:16], merged["end"][11:16]) == ("09:00", "17:00")
    # Once the sync has started, the next change is a new request again.
    notify(client, channel, channel["token"], number=11)
    assert queue.syncs() == 1 and len(queue.queued) == 1


def test_renewal_replaces_expiring_channels_then_stops_the_old(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue, store: Store,
    connected: dict[str, Any],
) -> None:
    assert renew_channels(store, queue) == 0  # a fresh channel is left alone
    with store.write() as conn:
        conn.execute(update(watch_channels).values(expiration=utcnow() + timedelta(hours=3)))

    assert renew_channels(store, queue) == 1
    assert queue.run() == [("watch", connected["id"], "active")]

    (new,) = channels(store, connected["id"], live=True)
    (old,) = channels(store, connected["id"], live=False)
    assert old["id"] == channel["id"] and new["id"] != channel["id"]
    assert new["expiration"] > utcnow() + timedelta(days=6)
    stops = [r.body for r in fake.calls("POST", "/channels/stop")]
    assert stops == [{"id": channel["id"], "resourceId": channel["resourceId"]}]
    watches = fake.calls("POST", "/events/watch")
    assert fake.requests.index(watches[-1]) < fake.requests.index(fake.calls("POST", "/channels/stop")[0])
    assert set(fake.channels) == {new["id"]}
    # The old channel's late notifications are ignored; the new one's count.
    notify(client, channel, channel["token"])
    assert queue.queued == []
    fresh = fake_channel(fake, new["id"])
    notify(client, fresh, fresh["token"])
    assert queue.syncs() == 1
    queue.run()
    assert renew_channels(store, queue) == 0


def test_renewal_survives_an_old_channel_google_already_forgot(
    channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue, store: Store,
    connected: dict[str, Any],
) -> None:
    with store.write() as conn:
        conn.execute(update(watch_channels).values(expiration=utcnow() + timedelta(hours=3)))
    with fake.lock:
        fake.channels.clear()  # Google answers 404 to channels.stop

    renew_channels(store, queue)
    assert queue.run() == [("watch", connected["id"], "active")]
    assert len(channels(store, connected["id"], live=True)) == 1
    assert len(channels(store, connected["id"], live=False)) == 1


def test_a_connection_without_channels_is_watched_by_the_hourly_task(
    client: TestClient, oauth: FakeGoogleOAuth, store: Store, queue: RecordingQueue
) -> None:
    connection = connect(client, oauth)
    queue.queued.remove(("watch", connection["id"]))  # the watch message was lost
    queue.run()
    assert channels(store, connection["id"]) == []

    assert renew_channels(store, queue) == 1
    queue.run()
    assert len(channels(store, connection["id"], live=True)) == 1


def test_disconnect_stops_the_channels(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue, store: Store,
    connected: dict[str, Any],
) -> None:
    response = client.delete(f"/v1/calendar-connections/{connected['id']}", headers=auth(EXPERT))
    assert response.status_code == 204

    wiring.drain_outbox(store, Settings(), budget_seconds=10)

    assert fake.channels == {}
    assert channels(store, connected["id"], live=True) == []
    assert [r.body for r in fake.calls("POST", "/channels/stop")] == [
        {"id": channel["id"], "resourceId": channel["resourceId"]}
    ]
    notify(client, channel, channel["token"])
    assert queue.queued == []
