"""Rate limits are retried, ``invalid_grant`` ends in ``reauth_required``, pushes are idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from booking_engine.store.db import Store
from booking_engine.store.tables import booking_calendar_events, busy_blocks
from config.settings import Settings
from config.task_sender import CeleryTaskQueue
from connectors.google.events import event_id_for_booking
from tests.support.api import USER, auth, booking_body
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    EXPERT,
    RecordingQueue,
    busy_times,
    channels,
    connect,
    expire_access_token,
    fake_channel,
    google_event,
    notify,
    outbox_types,
)
from tests.support.google_oauth import FakeGoogleOAuth
from worker import wiring
from worker.calendar import push
from worker.tasks.google import google_sync


@pytest.fixture
def channel(connected: dict[str, Any], store: Store, fake: FakeGoogleCalendar) -> dict[str, Any]:
    (row,) = channels(store, connected["id"], live=True)
    return fake_channel(fake, row["id"])


@pytest.fixture
def worker_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Celery tasks run eagerly (``apply``) on the test's store."""
    settings = Settings()
    idle = CeleryTaskQueue(settings.resolved_broker_url(), enabled=False)
    wiring.use(wiring.Worker(settings, store, idle, wiring.outbox_handlers(settings)))
    return store


def test_rate_limits_are_retried_inside_the_call(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, queue: RecordingQueue,
    sleeps: list[float],
) -> None:
    fake.add_event(ACCOUNT, google_event(2, 9))
    fake.fail_next(1, 429, "rateLimitExceeded")
    fake.fail_next(1, 403, "userRateLimitExceeded")
    fake.fail_next(1, 503, "backendError")

    notify(client, channel, channel["token"])
    (result,) = queue.run()

    assert result[2] == "active"
    assert len(sleeps) == 3
    assert len(busy_times(client)) == 1


def test_a_longer_outage_is_retried_by_the_task(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, connected: dict[str, Any],
    worker_store: Store, sleeps: list[float],
) -> None:
    """The provider gives up after five tries; Celery's autoretry takes over (eagerly here)."""
    fake.add_event(ACCOUNT, google_event(2, 9))
    fake.fail_next(7, 429, "rateLimitExceeded")

    result = google_sync.apply(args=[connected["id"]])

    assert result.successful(), result.traceback
    assert result.get() == "active"
    assert len(fake.calls("GET", "/events")) >= 8
    assert len(busy_times(client)) == 1
    listed = client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()["items"]
    assert listed[0]["status"] == "active" and listed[0]["lastError"] is None


def test_invalid_grant_needs_reauth_end_to_end(
    client: TestClient, channel: dict[str, Any], fake: FakeGoogleCalendar, oauth: FakeGoogleOAuth,
    queue: RecordingQueue, connected: dict[str, Any], store: Store, worker_store: Store,
) -> None:
    expire_access_token(store, connected["id"])
    oauth.revoke_all()
    refreshes_before = oauth.refreshes()

    assert notify(client, channel, channel["token"]).status_code == 200
    result = google_sync.apply(args=[queue.queued.pop()[1]])

    assert result.successful() and result.get() == "reauth_required"
    assert oauth.refreshes() == refreshes_before + 1  # tried once, never retried
    listed = client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()["items"]
    assert listed[0]["status"] == "reauth_required"
    assert "invalid_grant" in listed[0]["lastError"]
    assert outbox_types(store).count("connection.reauth_required") == 1
    assert channels(store, connected["id"], live=True) == []
    # Later notifications on the stopped channel do nothing; the outbox handler is harmless.
    notify(client, channel, channel["token"])
    assert queue.queued == []
    wiring.drain_outbox(store, Settings(), budget_seconds=10)
    # Reconnecting brings the same connection back, watched again.
    assert connect(client, oauth)["id"] == connected["id"]
    queue.run()
    listed = client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()["items"]
    assert listed[0]["status"] == "active"
    assert len(channels(store, connected["id"], live=True)) == 1


def test_duplicate_push_deliveries_give_one_event(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, queue: RecordingQueue,
) -> None:
    created = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert created.status_code == 201, created.text
    booking_id = created.json()["id"]
    assert client.post(f"/v1/bookings/{booking_id}/confirm", headers=auth(EXPERT)).status_code == 200

    assert push.push_booking(store, booking_id, settings=Settings()) == 1
    assert push.push_booking(store, booking_id, settings=Settings()) == 1
    with store.write() as conn:  # a worker died after writing the event, before saving its ref
        conn.execute(delete(booking_calendar_events))
    assert push.push_booking(store, booking_id, settings=Settings()) == 1

    event_id = event_id_for_booking(booking_id)
    with fake.lock:
        ours = [e for e in fake.calendars[ACCOUNT].events.values() if e["id"] == event_id]
        everything = list(fake.calendars[ACCOUNT].events)
    assert len(ours) == 1 and everything == [event_id]
    assert ours[0]["status"] == "confirmed"
    # Pulling the calendar back does not turn calbook's own event into an external block.
    watched = fake_channel(fake, channels(store, connected["id"], live=True)[0]["id"])
    notify(client, watched, watched["token"])
    assert queue.run()[0][2] == "active"
    with store.read() as conn:
        assert conn.execute(select(busy_blocks)).first() is None
