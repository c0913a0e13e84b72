"""``PATCH /v1/calendar-connections/{id}`` for Google, against the fake Calendar API.

The connection starts with the primary calendar as busy and destination. The expert adds
and removes busy calendars (channels follow, on the next sync or the hourly renewal) and
moves the destination (upcoming confirmed bookings' events move on the next sync).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from booking_engine.services import calendar_sync
from booking_engine.store.db import Store
from booking_engine.store.tables import busy_blocks, calendar_connections
from config.settings import Settings
from connectors.google.events import event_id_for_booking
from tests.support.api import assert_problem, auth, booking_body
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    EXPERT,
    SECONDARY,
    RecordingQueue,
    busy_times,
    channels,
    google_event,
)
from worker import wiring
from worker.calendar import push
from worker.tasks.google import renew_channels

HOME = "home@group.calendar.test"
BASE = "/v1/calendar-connections"
USER = "user-1"


def _patch(client: TestClient, connection_id: str, body: dict[str, Any], user: str | None = EXPERT) -> Any:
    return client.patch(f"{BASE}/{connection_id}", json=body, headers=auth(user) if user else {})


def _watched(store: Store, connection_id: str) -> list[str]:
    return sorted(c["calendar_id"] for c in channels(store, connection_id, live=True))


def _fake_watched(fake: FakeGoogleCalendar) -> list[str]:
    with fake.lock:
        return sorted(c["calendarId"] for c in fake.channels.values())


def test_connect_stores_the_calendar_list(store: Store, connected: dict[str, Any]) -> None:
    with store.read() as conn:
        config = conn.execute(select(calendar_connections.c.config).where(
            calendar_connections.c.id == connected["id"])).scalar_one()
    assert {c["id"]: c["writable"] for c in config["calendars"]} == {ACCOUNT: True, SECONDARY: False}


def test_authorization_and_validation(
    client: TestClient, store: Store, connected: dict[str, Any], queue: RecordingQueue
) -> None:
    path = connected["id"]
    assert_problem(_patch(client, path, {"busyCalendars": [SECONDARY]}, user=None), 401, "unauthenticated")
    assert_problem(_patch(client, path, {"busyCalendars": [SECONDARY]}, user="stranger-1"), 404, "not_found")
    for body, field in (({"busyCalendars": [ACCOUNT, "nobody@example.com"]}, "busyCalendars"),
                        ({"destinationCalendar": "nobody@example.com"}, "destinationCalendar"),
                        ({"destinationCalendar": SECONDARY}, "destinationCalendar")):  # a reader calendar
        problem = assert_problem(_patch(client, path, body), 422, "validation_error")
        assert problem["errors"][0]["field"] == field, problem
    after = client.get(f"{BASE}/{path}", headers=auth(EXPERT)).json()
    assert after["busyCalendars"] == [ACCOUNT] and after["destinationCalendar"] == ACCOUNT
    assert _watched(store, path) == [ACCOUNT]


def test_busy_calendars_and_channels_follow_the_choice(
    client: TestClient, store: Store, fake: FakeGoogleCalendar, connected: dict[str, Any], queue: RecordingQueue
) -> None:
    connection_id = connected["id"]
    fake.add_event(SECONDARY, google_event(1, 12))
    assert busy_times(client) == []
    assert _watched(store, connection_id) == [ACCOUNT]

    # Adding the team calendar: imported, and watched, on the next sync.
    answer = _patch(client, connection_id, {"busyCalendars": [ACCOUNT, SECONDARY]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["busyCalendars"] == [ACCOUNT, SECONDARY]
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    assert len(busy_times(client)) == 1
    assert _watched(store, connection_id) == [ACCOUNT, SECONDARY] == _fake_watched(fake)
    assert renew_channels(store, queue) == 0  # in step now

    # Removing it: its busy time goes at once; the next sync stops its channel, and brings nothing back.
    assert _patch(client, connection_id, {"busyCalendars": [ACCOUNT]}).status_code == 200
    assert busy_times(client) == []
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    assert busy_times(client) == []
    assert _watched(store, connection_id) == [ACCOUNT] == _fake_watched(fake)


def test_the_hourly_renewal_sets_channels_right_when_no_sync_did(
    client: TestClient, store: Store, fake: FakeGoogleCalendar, connected: dict[str, Any], queue: RecordingQueue
) -> None:
    connection_id = connected["id"]
    assert _patch(client, connection_id, {"busyCalendars": [SECONDARY]}).status_code == 200
    assert renew_channels(store, queue) == 1
    assert queue.run() == [("watch", connection_id, "active")]
    assert _watched(store, connection_id) == [SECONDARY] == _fake_watched(fake)
    assert renew_channels(store, queue) == 0


def test_a_new_destination_gets_the_upcoming_bookings(
    client: TestClient, store: Store, fake: FakeGoogleCalendar, connected: dict[str, Any], queue: RecordingQueue
) -> None:
    connection_id = connected["id"]
    created = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert created.status_code == 201, created.text
    booking_id = created.json()["id"]
    assert client.post(f"/v1/bookings/{booking_id}/confirm", headers=auth(EXPERT)).status_code == 200
    assert push.push_booking(store, booking_id, settings=Settings()) == 1
    event_id = event_id_for_booking(booking_id)
    assert fake.event(ACCOUNT, event_id)["status"] == "confirmed"  # type: ignore[index]

    # A calendar created after connecting: not in the stored list, so the API asks Google.
    fake.add_calendar(HOME, "Home", "UTC", "owner")
    answer = _patch(client, connection_id, {"destinationCalendar": HOME})
    assert answer.status_code == 200, answer.text
    assert answer.json()["destinationCalendar"] == HOME and answer.json()["busyCalendars"] == [ACCOUNT]
    outcome = wiring.sync_connection(store, connection_id, Settings())
    assert outcome.status == "active" and outcome.backfilled == 1
    assert fake.event(ACCOUNT, event_id)["status"] == "cancelled"  # type: ignore[index]
    with fake.lock:
        mine = [e for e in fake.calendars[HOME].events.values() if e["id"] == event_id]
    assert len(mine) == 1 and mine[0]["status"] == "confirmed"
    ref = calendar_sync.get_event_ref(store, booking_id, connection_id)
    assert ref is not None and ref.calendar_id == HOME and ref.ref == event_id
    assert wiring.sync_connection(store, connection_id, Settings()).backfilled == 0
    with store.read() as conn:  # calbook's own event is never imported as busy time
        assert conn.execute(select(busy_blocks)).first() is None
