"""Expert settings (ETag / If-Match), exceptions, slots, month view and busy times over HTTP."""

from __future__ import annotations

from datetime import timedelta

from tests.support.api import EXPERT, STRANGER, USER, assert_problem, at, auth, day_ahead
from tests.support.factories import settings_body

URL = f"/v1/experts/{EXPERT}/availability"


def test_unpublished_expert_reads_closed_defaults_with_etag_zero(client):
    # An expert with a profile but no settings (an expert nobody knows is 404, see below).
    assert client.put("/v1/me", json={"timezone": "Europe/Berlin"}, headers=auth(EXPERT)).status_code == 200
    response = client.get(URL, headers=auth(USER))
    assert response.status_code == 200
    assert response.json()["timezone"] == "Europe/Berlin"
    assert response.headers["etag"] == '"0"'
    body = response.json()
    assert body["version"] == 0 and body["minBookingDurationMinutes"] == 60
    assert all(not day["isAvailable"] for day in body["weeklySchedule"].values())


def test_put_needs_if_match_and_refuses_stale_versions(client):
    body = settings_body(timezone="Europe/Berlin")
    assert_problem(client.put(URL, json=body, headers=auth(EXPERT)), 428, "precondition_failed")
    created = client.put(URL, json=body, headers={**auth(EXPERT), "If-Match": '"0"'})
    assert created.status_code == 200, created.text
    assert created.headers["etag"] == '"1"' and created.json()["timezone"] == "Europe/Berlin"
    stale = client.put(URL, json=body, headers={**auth(EXPERT), "If-Match": '"0"'})
    assert_problem(stale, 412, "precondition_failed")
    for bad in ("*", 'W/"1"', '"1", "2"', "abc"):
        assert_problem(client.put(URL, json=body, headers={**auth(EXPERT), "If-Match": bad}), 412,
                       "precondition_failed")
    updated = client.put(URL, json={**body, "autoConfirm": True}, headers={**auth(EXPERT), "If-Match": '"1"'})
    assert updated.status_code == 200 and updated.headers["etag"] == '"2"'
    read = client.get(URL, headers=auth(STRANGER))
    assert read.headers["etag"] == '"2"' and read.json()["autoConfirm"] is True


def test_only_the_expert_writes_settings(client):
    response = client.put(URL, json=settings_body(), headers={**auth(USER), "If-Match": '"0"'})
    assert_problem(response, 403, "forbidden")
    # Even without If-Match, a stranger hears "forbidden", not how to get past the precondition.
    assert_problem(client.put(URL, json=settings_body(), headers=auth(USER)), 403, "forbidden")


def test_settings_are_validated(client):
    headers = {**auth(EXPERT), "If-Match": '"0"'}
    cases = [
        settings_body(minBookingDurationMinutes=30),
        settings_body(timezone="Mars/Olympus"),
        settings_body(minBookingDurationMinutes="60"),
        settings_body(autoConfirm="yes"),
        settings_body(unknownField=1),
        settings_body(weeklySchedule={"mon": {"isAvailable": True, "windows": [{"start": "10:00", "end": "09:00"}]}}),
        settings_body(weeklySchedule={"mon": {"isAvailable": True, "windows": [
            {"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}}),
        settings_body(weeklySchedule={"funday": {"isAvailable": True}}),
        settings_body(currency="usd"),
    ]
    for body in cases:
        problem = assert_problem(client.put(URL, json=body, headers=headers), 422, "validation_error")
        assert problem["detail"]
    assert client.get(URL, headers=auth(EXPERT)).json()["version"] == 0


def test_exceptions_put_list_delete(client, expert):
    day = day_ahead(3)
    url = f"/v1/experts/{EXPERT}/exceptions/{day.isoformat()}"
    body = {"type": "custom_hours", "windows": [{"start": "12:00", "end": "14:00"}], "reason": "dentist"}
    put = client.put(url, json=body, headers=auth(EXPERT))
    assert put.status_code == 200, put.text
    assert put.json() == {"date": day.isoformat(), **body}
    listed = client.get(f"/v1/experts/{EXPERT}/exceptions", headers=auth(USER),
                        params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()})
    assert listed.status_code == 200 and listed.json()["items"] == [put.json()]
    assert client.get(f"/v1/experts/{EXPERT}/exceptions", headers=auth(USER)).json()["items"] == [put.json()]
    slots = client.get(f"/v1/experts/{EXPERT}/slots", params={"date": day.isoformat(), "duration": 60},
                       headers=auth(USER)).json()["slots"]
    assert [s["start"] for s in slots] == [at(day, 12), at(day, 12, 30), at(day, 13)]
    off = client.put(url, json={"type": "unavailable"}, headers=auth(EXPERT))
    assert off.status_code == 200 and off.json()["windows"] == []
    assert_problem(client.put(url, json={"type": "unavailable"}, headers=auth(USER)), 403, "forbidden")
    assert_problem(client.delete(url, headers=auth(USER)), 403, "forbidden")
    assert client.delete(url, headers=auth(EXPERT)).status_code == 204
    assert_problem(client.delete(url, headers=auth(EXPERT)), 404, "not_found")


def test_exception_bodies_and_dates_are_validated(client, expert):
    base = f"/v1/experts/{EXPERT}/exceptions"
    day = day_ahead(3).isoformat()
    assert_problem(client.put(f"{base}/{day}", json={"type": "holiday"}, headers=auth(EXPERT)), 422,
                   "validation_error")
    assert_problem(client.put(f"{base}/{day}", json={"type": "custom_hours"}, headers=auth(EXPERT)), 422,
                   "validation_error")
    for bad_day in ("2030-02-30", "2030-13-01", "tomorrow", "0001-01-01"):
        assert_problem(client.put(f"{base}/{bad_day}", json={"type": "unavailable"}, headers=auth(EXPERT)), 422,
                       "validation_error")
    assert_problem(client.get(base, params={"from": "2030-02-30"}, headers=auth(USER)), 422, "validation_error")
    assert_problem(client.get(base, params={"from": "2030-03-02", "to": "2030-03-01"}, headers=auth(USER)), 422,
                   "validation_error")


def test_slots_with_price_status_and_viewer_timezone(client, expert, booking):
    day = day_ahead()
    response = client.get(f"/v1/experts/{EXPERT}/slots", params={"date": day.isoformat(), "duration": 90},
                          headers=auth(STRANGER))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "UTC" and body["durationMinutes"] == 90
    slots = body["slots"]
    assert slots[0] == {"start": at(day, 9), "end": at(day, 10, 30), "localStart": f"{day.isoformat()}T09:00:00+00:00",
                        "priceCents": 9000, "currency": "USD", "status": "booked"}
    by_start = {s["start"]: s["status"] for s in slots}
    assert by_start[at(day, 11, 30)] == "available" and by_start[at(day, 11)] == "booked"
    tokyo = client.get(f"/v1/experts/{EXPERT}/slots", headers=auth(USER),
                       params={"date": day.isoformat(), "duration": 60, "tz": "Asia/Tokyo"}).json()
    assert tokyo["timezone"] == "Asia/Tokyo"
    assert all(s["localStart"].endswith("+09:00") and s["localStart"].startswith(day.isoformat())
               for s in tokyo["slots"])


def test_slot_query_errors_carry_their_codes(client, expert):
    url = f"/v1/experts/{EXPERT}/slots"
    day = day_ahead().isoformat()
    cases = [
        ({"date": day, "duration": 45}, "duration_too_short"),
        ({"date": day, "duration": 240}, "duration_too_long"),
        ({"date": day, "duration": 70}, "duration_not_multiple_of_15"),
        ({"date": day, "duration": 60, "tz": "Nowhere/Town"}, "validation_error"),
        ({"date": "2030-02-30", "duration": 60}, "validation_error"),
        ({"date": day, "duration": "an hour"}, "validation_error"),
        ({"date": day}, "validation_error"),
        ({"date": "9999-12-31", "duration": 60}, "validation_error"),
    ]
    for params, code in cases:
        assert_problem(client.get(url, params=params, headers=auth(USER)), 422, code)


def test_month_calendar(client, expert, booking):
    day = day_ahead()
    month = day.strftime("%Y-%m")
    response = client.get(f"/v1/experts/{EXPERT}/calendar", params={"month": month}, headers=auth(USER))
    assert response.status_code == 200, response.text
    days = {d["date"]: d["status"] for d in response.json()["days"]}
    assert days[day.isoformat()] == "partial"
    assert set(days.values()) <= {"available", "partial", "unavailable"}
    assert len(days) in (28, 29, 30, 31)
    for bad in ("2030-13", "2030-00", "2030-1", "March", "0001-01", "9999-12"):
        assert_problem(client.get(f"/v1/experts/{EXPERT}/calendar", params={"month": bad}, headers=auth(USER)),
                       422, "validation_error")


def test_busy_times_only(client, expert, booking):
    day = day_ahead()
    response = client.get(f"/v1/experts/{EXPERT}/busy", headers=auth(STRANGER),
                          params={"from": at(day, 0), "to": at(day + timedelta(days=1), 0)})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [{"start": booking["startTime"], "end": booking["endTime"]}]}
    assert_problem(client.get(f"/v1/experts/{EXPERT}/busy", headers=auth(USER),
                              params={"from": f"{day.isoformat()}T00:00:00", "to": at(day, 12)}),
                   422, "validation_error")
    assert_problem(client.get(f"/v1/experts/{EXPERT}/busy", headers=auth(USER),
                              params={"from": at(day, 12), "to": at(day, 0)}), 422, "validation_error")


NOBODY = "nobody-at-all"


def _expert_routes(expert_id: str) -> list[tuple[str, str, dict | None]]:
    """Every route that reads an expert's time or books them (docs/domain.md#experts)."""
    day = day_ahead(2)
    return [
        ("GET", f"/v1/experts/{expert_id}/availability", None),
        ("GET", f"/v1/experts/{expert_id}/exceptions", None),
        ("GET", f"/v1/experts/{expert_id}/slots?date={day.isoformat()}&duration=60", None),
        ("GET", f"/v1/experts/{expert_id}/calendar?month={day.isoformat()[:7]}", None),
        ("GET", f"/v1/experts/{expert_id}/busy?from={at(day, 0)}&to={at(day, 23)}", None),
        ("POST", "/v1/bookings", {"expertId": expert_id, "startTime": at(day, 10), "durationMinutes": 60,
                                  "type": "video_call"}),
        ("POST", "/v1/booking-requests", {"expertId": expert_id, "requestedDurationMinutes": 60,
                                          "type": "video_call", "proposedSlots": [{"startTime": at(day, 10)}]}),
    ]


def test_an_expert_nobody_knows_is_404_on_every_expert_route(client, store):
    for method, url, body in _expert_routes(NOBODY):
        assert_problem(client.request(method, url, json=body, headers=auth(USER)), 404, "not_found")
    # Nothing was written for them: asking did not make them known.
    for method, url, body in _expert_routes(NOBODY)[:5]:
        assert_problem(client.request(method, url, json=body, headers=auth(STRANGER)), 404, "not_found")
    assert client.get("/v1/booking-requests", headers=auth(USER)).json()["items"] == []
    assert client.get("/v1/bookings", headers=auth(USER)).json()["items"] == []


def test_an_expert_with_a_profile_but_no_settings_reads_the_closed_defaults(client):
    assert client.put("/v1/me", json={"displayName": "New"}, headers=auth(NOBODY)).status_code == 200
    routes = _expert_routes(NOBODY)
    for method, url, _ in routes[:5]:
        response = client.request(method, url, headers=auth(USER))
        assert response.status_code == 200, (url, response.text)
    assert client.get(routes[2][1], headers=auth(USER)).json()["slots"] == []
    assert_problem(client.post("/v1/bookings", json=routes[5][2], headers=auth(USER)), 422, "outside_availability")


def test_an_expert_sees_their_own_defaults_and_publishes_with_if_match_zero(client):
    own = client.get(f"/v1/experts/{NOBODY}/availability", headers=auth(NOBODY))
    assert own.status_code == 200 and own.headers["etag"] == '"0"'
    assert client.get(f"/v1/experts/{NOBODY}/slots", headers=auth(NOBODY),
                      params={"date": day_ahead(2).isoformat(), "duration": 60}).json()["slots"] == []
    assert_problem(client.get(f"/v1/experts/{NOBODY}/availability", headers=auth(USER)), 404, "not_found")
    put = client.put(f"/v1/experts/{NOBODY}/availability", json=settings_body(),
                     headers={**auth(NOBODY), "If-Match": '"0"'})
    assert put.status_code == 200 and put.headers["etag"] == '"1"'
    # Published: known to everyone now, and bookable.
    assert client.get(f"/v1/experts/{NOBODY}/availability", headers=auth(USER)).json()["version"] == 1
    assert client.post("/v1/bookings", json=_expert_routes(NOBODY)[5][2], headers=auth(USER)).status_code == 201


def test_an_expert_who_only_set_an_exception_is_known(client):
    day = day_ahead(3).isoformat()
    assert client.put(f"/v1/experts/{NOBODY}/exceptions/{day}", json={"type": "unavailable"},
                      headers=auth(NOBODY)).status_code == 200
    assert client.get(f"/v1/experts/{NOBODY}/exceptions", headers=auth(USER)).json()["items"][0]["date"] == day
