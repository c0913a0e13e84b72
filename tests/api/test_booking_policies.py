"""The change cut-off, the reschedule limit and the daily and weekly limits on both databases
(docs/lifecycle.md#change-cut-off, docs/lifecycle.md#reschedule-limit, docs/domain.md#booking-limits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from booking_engine.errors import BookingLimitReached, ChangeWindowClosed
from booking_engine.services import bookings
from booking_engine.store.db import Store
from tests.support.api import EXPERT, USER, assert_problem, at, auth, booking_body, day_ahead
from tests.support.factories import NOW, publish, settings_body

START = datetime(2030, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday; NOW is Monday 2030-03-04 08:00


def _book(store: Store, start: datetime = START, user: str = USER) -> Any:
    return bookings.create_booking(store, user, EXPERT, start, 60, "video_call", now=NOW)


# --- change cut-off ------------------------------------------------------------------------------


CHANGES = {
    "cancel": lambda store, b, t: bookings.cancel_booking(store, USER, b.id, "cannot come", now=t),
    "reschedule": lambda store, b, t: bookings.reschedule_booking(store, USER, b.id, START + timedelta(days=1), now=t),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize(("ahead", "open_"), [(timedelta(minutes=180), True),
                                              (timedelta(minutes=180) - timedelta(seconds=1), False)])
def test_the_user_changes_until_exactly_the_cutoff(store: Store, change: str, ahead: timedelta, open_: bool) -> None:
    publish(store, EXPERT, now=NOW, changeCutoffMinutes=180)
    booking = _book(store)
    moment = START - ahead
    if open_:
        CHANGES[change](store, booking, moment)
        return
    with pytest.raises(ChangeWindowClosed):
        CHANGES[change](store, booking, moment)
    after = bookings.get_booking(store, USER, booking.id)
    assert (after.start, after.status) == (START, "pending")
    bookings.cancel_booking(store, EXPERT, booking.id, "the expert still can", now=moment)


def test_the_cutoff_over_http_and_the_expert_still_moves_it(client: TestClient, store: Store) -> None:
    publish(store, EXPERT, now=NOW, changeCutoffMinutes=60 * 24 * 30)  # thirty days: every booking is inside
    made = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    body = assert_problem(client.post(f"/v1/bookings/{booking_id}/cancel", json={"reason": "no"}, headers=auth(USER)),
                          409, "change_window_closed")
    assert "43200 minutes" in body["detail"]
    moved = {"newStartTime": at(day_ahead(2), 10)}
    assert_problem(client.post(f"/v1/bookings/{booking_id}/reschedule", json=moved, headers=auth(USER)),
                   409, "change_window_closed")
    by_expert = client.post(f"/v1/bookings/{booking_id}/reschedule", json=moved, headers=auth(EXPERT))
    assert by_expert.status_code == 200 and by_expert.json()["rescheduleCount"] == 1
    cancelled = client.post(f"/v1/bookings/{booking_id}/cancel", json={"reason": "ill"}, headers=auth(EXPERT))
    assert cancelled.status_code == 200


# --- reschedule limit ----------------------------------------------------------------------------


def test_the_user_reschedules_as_often_as_allowed(client: TestClient, store: Store) -> None:
    from booking_engine.clock import utcnow

    publish(store, EXPERT, now=utcnow(), maxReschedulesPerBooking=2, autoConfirm=True)
    made = client.post("/v1/bookings", json=booking_body(), headers=auth(USER)).json()
    assert made["rescheduleCount"] == 0
    for n in (1, 2):
        moved = client.post(f"/v1/bookings/{made['id']}/reschedule", json={"newStartTime": at(day_ahead(1 + n), 10)},
                            headers=auth(USER))
        assert moved.status_code == 200 and moved.json()["rescheduleCount"] == n
    third = client.post(f"/v1/bookings/{made['id']}/reschedule", json={"newStartTime": at(day_ahead(5), 10)},
                        headers=auth(USER))
    assert_problem(third, 409, "reschedule_limit_reached")
    assert client.get(f"/v1/bookings/{made['id']}", headers=auth(USER)).json()["rescheduleCount"] == 2
    by_expert = client.post(f"/v1/bookings/{made['id']}/reschedule", json={"newStartTime": at(day_ahead(5), 10)},
                            headers=auth(EXPERT))
    assert by_expert.status_code == 200 and by_expert.json()["rescheduleCount"] == 3


# --- daily and weekly limits ---------------------------------------------------------------------


def test_the_last_place_of_a_day_then_the_day_is_full(client: TestClient, store: Store) -> None:
    from booking_engine.clock import utcnow

    publish(store, EXPERT, now=utcnow(), maxBookingsPerDay=2)
    day = day_ahead(3)
    slots = f"/v1/experts/{EXPERT}/slots?date={day.isoformat()}&duration=60"
    for hour in (9, 11):
        made = client.post("/v1/bookings", json=booking_body(day, hour), headers=auth(USER))
        assert made.status_code == 201, made.text
    assert client.get(slots, headers=auth(USER)).json()["slots"] == []
    month = client.get(f"/v1/experts/{EXPERT}/calendar?month={day.strftime('%Y-%m')}", headers=auth(USER)).json()
    assert {d["date"]: d["status"] for d in month["days"]}[day.isoformat()] == "unavailable"
    body = assert_problem(client.post("/v1/bookings", json=booking_body(day, 14), headers=auth("user-2")),
                          409, "booking_limit_reached")
    assert day.isoformat() in body["detail"]
    # A reschedule onto the full day is refused too; within it, the booking itself is not counted.
    other = client.post("/v1/bookings", json=booking_body(day_ahead(4), 9), headers=auth(USER)).json()
    onto = client.post(f"/v1/bookings/{other['id']}/reschedule", json={"newStartTime": at(day, 14)},
                       headers=auth(USER))
    assert_problem(onto, 409, "booking_limit_reached")
    first = client.get("/v1/bookings", headers=auth(USER)).json()["items"][0]
    within = client.post(f"/v1/bookings/{first['id']}/reschedule", json={"newStartTime": at(day, 14)},
                         headers=auth(USER))
    assert within.status_code == 200, within.text
    # A cancellation frees the place.
    client.post(f"/v1/bookings/{first['id']}/cancel", json={"reason": "freed"}, headers=auth(USER))
    assert client.get(slots, headers=auth(USER)).json()["slots"]
    assert client.post("/v1/bookings", json=booking_body(day, 14), headers=auth("user-2")).status_code == 201


def test_the_weekly_limit_counts_the_experts_iso_week(store: Store) -> None:
    # ISO week 10 is Mon 2030-03-04 .. Sun 2030-03-10 in New York, where DST starts on the 10th (UTC-4):
    # Sunday 23:00 there is Monday 03:00 UTC, and still counts for week 10.
    sunday_late = datetime(2030, 3, 11, 3, 0, tzinfo=UTC)
    publish(store, EXPERT, now=NOW, maxBookingsPerWeek=2, timezone="America/New_York",
            weeklySchedule=settings_body()["weeklySchedule"] | {
                "sun": {"isAvailable": True, "windows": [{"start": "09:00", "end": "24:00"}]}})
    _book(store, datetime(2030, 3, 5, 14, 0, tzinfo=UTC))  # Tuesday
    _book(store, sunday_late)  # still Sunday, in the same ISO week, locally
    with pytest.raises(BookingLimitReached, match="2030-W10"):
        _book(store, datetime(2030, 3, 7, 14, 0, tzinfo=UTC), user="user-2")
    _book(store, datetime(2030, 3, 11, 14, 0, tzinfo=UTC), user="user-2")  # Monday: the next week


def test_the_limits_are_in_the_settings_document(client: TestClient, store: Store) -> None:
    body = settings_body(changeCutoffMinutes=120, maxReschedulesPerBooking=1, maxBookingsPerDay=4,
                         maxBookingsPerWeek=10)
    saved = client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"0"'}, json=body)
    assert saved.status_code == 200, saved.text
    got = client.get(f"/v1/experts/{EXPERT}/availability", headers=auth(USER)).json()
    assert {k: got[k] for k in ("changeCutoffMinutes", "maxReschedulesPerBooking", "maxBookingsPerDay",
                                "maxBookingsPerWeek")} == {"changeCutoffMinutes": 120, "maxReschedulesPerBooking": 1,
                                                           "maxBookingsPerDay": 4, "maxBookingsPerWeek": 10}
    cleared = client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"1"'},
                         json={**body, "maxBookingsPerDay": None})
    assert cleared.status_code == 200 and cleared.json()["maxBookingsPerDay"] is None
    assert_problem(client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"1"'},
                              json=body), 412, "precondition_failed")
    assert_problem(client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"2"'},
                              json={**body, "maxBookingsPerDay": 0}), 422, "validation_error")
