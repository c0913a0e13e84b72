"""Push: a confirmed booking's event in the destination calendar, through the worker's push."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from booking_engine.store.db import Store
from booking_engine.store.tables import booking_calendar_events, busy_blocks
from config.settings import Settings
from connectors.microsoft.events import BOOKING_PROPERTY_ID
from tests.support.api import USER, at, auth, booking_body, day_ahead
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import EXPERT, WORK, RecordingQueue
from worker.calendar import push


def _confirmed(client: TestClient) -> str:
    created = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert created.status_code == 201, created.text
    booking_id = created.json()["id"]
    assert client.post(f"/v1/bookings/{booking_id}/confirm", headers=auth(EXPERT)).status_code == 200
    return str(booking_id)


def test_create_patch_delete(
    settings: Settings, connected: dict[str, Any], client: TestClient, fake: FakeGraph, store: Store,
) -> None:
    booking_id = _confirmed(client)
    assert push.push_booking(store, booking_id, settings=settings) == 1
    (written,) = fake.events_of(WORK)
    assert written["transactionId"].startswith("calbook-")
    assert written["singleValueExtendedProperties"] == [{"id": BOOKING_PROPERTY_ID, "value": booking_id}]
    assert written["start"] == {"dateTime": at(day_ahead(), 10).replace("Z", ""), "timeZone": "UTC"}
    assert written["showAs"] == "busy"

    moved = client.post(f"/v1/bookings/{booking_id}/reschedule", json={"newStartTime": at(day_ahead(2), 11)},
                        headers=auth(EXPERT))
    assert moved.status_code == 200, moved.text
    fake.log.clear()
    assert push.push_booking(store, booking_id, settings=settings) == 1
    (patched,) = fake.events_of(WORK)
    assert patched["id"] == written["id"] and patched["start"]["dateTime"] == at(day_ahead(2), 11).replace("Z", "")
    assert [m for m, _ in fake.log] == ["PATCH"]

    assert client.post(f"/v1/bookings/{booking_id}/cancel", json={"reason": "ill"},
                       headers=auth(EXPERT)).status_code == 200
    assert push.push_booking(store, booking_id, settings=settings) == 1
    assert fake.events_of(WORK) == []
    fake.log.clear()
    push.push_booking(store, booking_id, settings=settings)  # again: already gone is done (a 404 at most)
    assert fake.events_of(WORK) == []


def test_duplicate_pushes_and_a_lost_answer_give_one_event(settings: Settings,
    connected: dict[str, Any], client: TestClient, fake: FakeGraph, store: Store, queue: RecordingQueue,
) -> None:
    booking_id = _confirmed(client)
    assert push.push_booking(store, booking_id, settings=settings) == 1
    assert push.push_booking(store, booking_id, settings=settings) == 1
    with store.write() as conn:  # a worker died after Graph created the event, before its ref was saved
        conn.execute(delete(booking_calendar_events))
    # The same transactionId: Graph drops the repeat.
    assert push.push_booking(store, booking_id, settings=settings) == 1
    assert len(fake.events_of(WORK)) == 1
    # Pulling the calendar back does not make calbook's own event an external block.
    queue.sync_changed(connected["id"])
    assert queue.run()[0][2] == "active"
    with store.read() as conn:
        assert conn.execute(select(busy_blocks)).first() is None


def test_an_event_the_expert_deleted_is_created_again(settings: Settings, connected: dict[str, Any], client: TestClient,
                                                      fake: FakeGraph, store: Store) -> None:
    booking_id = _confirmed(client)
    assert push.push_booking(store, booking_id, settings=settings) == 1
    (written,) = fake.events_of(WORK)
    fake.remove_event(WORK, written["id"])
    client.post(f"/v1/bookings/{booking_id}/reschedule", json={"newStartTime": at(day_ahead(3), 9)},
                headers=auth(EXPERT))
    assert push.push_booking(store, booking_id, settings=settings) == 1  # the patch answers 404: created anew
    (again,) = fake.events_of(WORK)
    assert again["start"]["dateTime"] == at(day_ahead(3), 9).replace("Z", "")
