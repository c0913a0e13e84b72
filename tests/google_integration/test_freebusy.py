"""Booking-time re-check against Google free/busy (``CALBOOK_GOOGLE_FREEBUSY_CHECK``), through the API.

The Google events here are created in the fake and never synced into calbook, so only the
free/busy check can see them.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from booking_engine.store.db import Store
from booking_engine.store.tables import bookings, busy_blocks
from config.settings import Settings
from tests.support.api import USER, assert_problem, at, auth, booking_body, day_ahead
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    EXPERT,
    expire_access_token,
    outbox_types,
    stored_credentials,
)
from tests.support.google_oauth import FakeGoogleOAuth


@pytest.fixture
def freebusy_on(client: TestClient, settings: Settings) -> Settings:
    """The app's settings with the check switched on (read per request by the routes)."""
    switched = settings.model_copy(update={"google_freebusy_check": True})
    client.app.state.settings = switched  # type: ignore[attr-defined]
    return switched


def _google_event(fake: FakeGoogleCalendar, start: str, end: str, calendar_id: str = ACCOUNT) -> None:
    fake.add_event(calendar_id, {"summary": "Dentist", "start": {"dateTime": start}, "end": {"dateTime": end}})


def _queries(fake: FakeGoogleCalendar) -> list[Any]:
    return fake.calls("POST", "/freeBusy")


def _booking_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(bookings)).scalar_one())


def _book(client: TestClient, hour: int = 10) -> Any:
    return client.post("/v1/bookings", json=booking_body(hour=hour), headers=auth(USER))


def test_setting_off_makes_no_query_and_books_over_an_unsynced_event(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store
) -> None:
    _google_event(fake, at(day_ahead(), 10), at(day_ahead(), 11))

    response = _book(client)

    assert response.status_code == 201, response.text
    assert _queries(fake) == []


@pytest.mark.parametrize(
    ("event_start", "event_end"),
    [((10, 30), (11, 30)), ((9, 0), (12, 0)), ((11, 10), (12, 0)), ((9, 0), (9, 50))],
    ids=["overlapping", "covering", "within-buffer-after", "within-buffer-before"],
)
def test_busy_in_google_is_slot_unavailable_and_writes_nothing(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store,
    freebusy_on: Settings, event_start: tuple[int, int], event_end: tuple[int, int],
) -> None:
    day = day_ahead()
    _google_event(fake, at(day, *event_start), at(day, *event_end))
    outbox_before = outbox_types(store)

    assert_problem(_book(client), 409, "slot_unavailable")

    assert _booking_count(store) == 0
    assert outbox_types(store) == outbox_before
    with store.read() as conn:  # the event was never synced: only free/busy saw it
        assert conn.execute(select(busy_blocks)).first() is None
    [query] = _queries(fake)
    # The range the 15-minute buffer blocks, on the connection's busy calendars.
    assert query.body["timeMin"] == at(day, 9, 45) and query.body["timeMax"] == at(day, 11, 15)
    assert [item["id"] for item in query.body["items"]] == [ACCOUNT]


def test_free_in_google_books(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings
) -> None:
    day = day_ahead()
    _google_event(fake, at(day, 11, 15), at(day, 12))  # just beyond the buffer
    _google_event(fake, at(day, 8), at(day, 9, 45))
    fake.add_event(ACCOUNT, {  # free time (transparent) does not block
        "summary": "Focus", "transparency": "transparent",
        "start": {"dateTime": at(day, 10)}, "end": {"dateTime": at(day, 11)},
    })

    response = _book(client)

    assert response.status_code == 201, response.text
    assert _booking_count(store) == 1
    assert len(_queries(fake)) == 1


def test_calendar_answering_with_errors_counts_as_busy(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings
) -> None:
    fake.freebusy_errors.add(ACCOUNT)

    assert_problem(_book(client), 409, "slot_unavailable")

    assert _booking_count(store) == 0


def test_local_errors_come_first_and_make_no_query(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings
) -> None:
    assert_problem(_book(client, hour=20), 422, "outside_availability")
    assert _book(client, hour=10).status_code == 201
    queries = len(_queries(fake))
    assert_problem(_book(client, hour=11), 409, "slot_unavailable")  # a local conflict (buffer)

    assert len(_queries(fake)) == queries == 1


def test_google_down_does_not_refuse_the_booking(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The documented decision: a failed request (not a calendar's error) lets the booking through."""
    _google_event(fake, at(day_ahead(), 10), at(day_ahead(), 11))
    fake.fail_next(2, 503)

    response = _book(client)

    assert response.status_code == 201, response.text
    assert len(_queries(fake)) == 2  # one retry only: a person waits for this answer
    assert "check failed, booking not refused" in caplog.text


def test_refused_credentials_skip_the_connection(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, oauth: FakeGoogleOAuth,
    freebusy_on: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    _google_event(fake, at(day_ahead(), 10), at(day_ahead(), 11))
    oauth.revoke_all()
    expire_access_token(store, connected["id"])

    response = _book(client)

    assert response.status_code == 201, response.text
    assert _queries(fake) == []  # the refresh failed before any query
    assert "credentials refused" in caplog.text


def test_refreshed_token_is_saved_after_the_check(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, oauth: FakeGoogleOAuth,
    freebusy_on: Settings,
) -> None:
    """The refresh is saved by a write of its own: the check runs outside the booking's transaction."""
    expire_access_token(store, connected["id"])
    refreshes = oauth.refreshes()

    assert _book(client).status_code == 201

    assert oauth.refreshes() == refreshes + 1
    assert not stored_credentials(store, connected["id"])["expiry"].startswith("2000-")


def test_no_google_connection_makes_no_query(
    client: TestClient, fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings
) -> None:
    assert _book(client).status_code == 201
    assert _queries(fake) == []


def test_accepting_a_request_checks_the_chosen_slot(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, store: Store, freebusy_on: Settings
) -> None:
    first, second = day_ahead(2), day_ahead(3)
    _google_event(fake, at(first, 10), at(first, 11))
    body = {
        "expertId": EXPERT, "requestedDurationMinutes": 60, "type": "audio_call",
        "proposedSlots": [{"startTime": at(first, 10)}, {"startTime": at(second, 14)}],
    }
    created = client.post("/v1/booking-requests", json=body, headers=auth(USER))
    assert created.status_code == 201, created.text
    url = f"/v1/booking-requests/{created.json()['id']}"
    assert _queries(fake) == []  # proposing is not booking

    assert_problem(client.post(f"{url}/respond", json={"accept": True, "slotIndex": 0}, headers=auth(EXPERT)),
                   409, "slot_unavailable")
    assert _booking_count(store) == 0
    assert client.get(url, headers=auth(EXPERT)).json()["status"] == "pending"
    # Only the expert may accept; a refusal on role comes before any query.
    assert_problem(client.post(f"{url}/respond", json={"accept": True, "slotIndex": 1}, headers=auth(USER)),
                   403, "forbidden")
    assert len(_queries(fake)) == 1

    accepted = client.post(f"{url}/respond", json={"accept": True, "slotIndex": 1}, headers=auth(EXPERT))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and _booking_count(store) == 1
    queries = _queries(fake)
    assert len(queries) == 2
    assert queries[-1].body["timeMin"] == at(second, 13, 45) and queries[-1].body["timeMax"] == at(second, 15, 15)


def test_rejecting_a_request_makes_no_query(
    client: TestClient, connected: dict[str, Any], fake: FakeGoogleCalendar, freebusy_on: Settings
) -> None:
    body = {
        "expertId": EXPERT, "requestedDurationMinutes": 60, "type": "audio_call",
        "proposedSlots": [{"startTime": at(day_ahead(2), 10)}],
    }
    created = client.post("/v1/booking-requests", json=body, headers=auth(USER)).json()
    rejected = client.post(f"/v1/booking-requests/{created['id']}/respond", json={"accept": False},
                           headers=auth(EXPERT))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert _queries(fake) == []

