"""Bookings over HTTP: create, read, list with filters and cursor, iCalendar, every lifecycle action."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from icalendar import Calendar

from booking_engine.clock import utcnow
from tests.support.api import EXPERT, STRANGER, USER, assert_problem, at, auth, booking_body, day_ahead
from tests.support.factories import publish


def test_create_answers_201_with_location_and_the_booking(client, expert):
    response = client.post("/v1/bookings", json=booking_body(notes="bring receipts"), headers=auth(USER))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/bookings/{body['id']}"
    day = day_ahead()
    expected = {
        "expertId": EXPERT, "userId": USER, "startTime": at(day, 10), "endTime": at(day, 11),
        "durationMinutes": 60, "status": "pending", "type": "video_call", "topic": "Tax questions",
        "notes": "bring receipts", "priceCents": 6000, "currency": "USD", "paymentId": None, "refundCents": None,
        "confirmedAt": None, "cancelledAt": None, "cancellationReason": None, "cancelledBy": None,
        "hasConflict": False,
    }
    assert {k: body[k] for k in expected} == expected
    assert body["createdAt"].endswith("Z")
    assert client.get(response.headers["location"], headers=auth(EXPERT)).json() == body


def test_offsets_are_accepted_and_answered_in_utc(client, expert):
    day = day_ahead()
    response = client.post("/v1/bookings", headers=auth(USER),
                           json=booking_body(startTime=f"{day.isoformat()}T12:00:00+02:00"))
    assert response.status_code == 201, response.text
    assert response.json()["startTime"] == at(day, 10)


def test_auto_confirm(client, store):
    publish(store, EXPERT, now=utcnow(), autoConfirm=True)
    response = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert response.json()["status"] == "confirmed" and response.json()["confirmedAt"]


def test_booking_rule_codes(client, store):
    publish(store, EXPERT, now=utcnow(), minNoticeMinutes=2 * 24 * 60, advanceBookingDays=10)
    day = day_ahead(3)
    cases = [
        (booking_body(day, durationMinutes=30), 422, "duration_too_short"),
        (booking_body(day, durationMinutes=240), 422, "duration_too_long"),
        (booking_body(day, durationMinutes=70), 422, "duration_not_multiple_of_15"),
        (booking_body(day, hour=20), 422, "outside_availability"),
        (booking_body(day_ahead(1)), 422, "too_short_notice"),
        (booking_body(day_ahead(20)), 422, "beyond_advance_limit"),
        (booking_body(utcnow().date() - timedelta(days=2)), 422, "in_the_past"),
        (booking_body(day, type="carrier_pigeon"), 422, "validation_error"),
        (booking_body(day, expertId=USER), 422, "validation_error"),
    ]
    for body, status, code in cases:
        assert_problem(client.post("/v1/bookings", json=body, headers=auth(USER)), status, code)
    assert client.post("/v1/bookings", json=booking_body(day), headers=auth(USER)).status_code == 201
    taken = client.post("/v1/bookings", json=booking_body(day, hour=10, type="audio_call"), headers=auth(STRANGER))
    assert_problem(taken, 409, "slot_unavailable")
    assert "buffer" not in taken.json()["detail"]
    # The buffer (15 min) keeps 11:00 off limits too, and says so; 11:15 is fine.
    near = assert_problem(client.post("/v1/bookings", json={**booking_body(day), "startTime": at(day, 11)},
                                      headers=auth(STRANGER)), 409, "slot_unavailable")
    assert "within the expert's 15-minute buffer of another booking" in near["detail"]
    ok = client.post("/v1/bookings", json={**booking_body(day), "startTime": at(day, 11, 15)}, headers=auth(STRANGER))
    assert ok.status_code == 201, ok.text


def test_list_filters_and_cursor(client, expert):
    ids = []
    for offset in range(5):
        response = client.post("/v1/bookings", json=booking_body(day_ahead(1 + offset)), headers=auth(USER))
        ids.append(response.json()["id"])
    client.post(f"/v1/bookings/{ids[0]}/confirm", headers=auth(EXPERT))
    client.post(f"/v1/bookings/{ids[1]}/cancel", json={"reason": "busy"}, headers=auth(USER))

    def listing(who: str, **params):
        response = client.get("/v1/bookings", params=params, headers=auth(who))
        assert response.status_code == 200, response.text
        return response.json()

    assert [b["id"] for b in listing(USER)["items"]] == ids
    assert listing(EXPERT)["items"] == []
    assert [b["id"] for b in listing(EXPERT, **{"as": "expert"})["items"]] == ids
    assert listing(STRANGER, **{"as": "expert"})["items"] == []
    assert [b["id"] for b in listing(USER, status="confirmed")["items"]] == [ids[0]]
    assert [b["id"] for b in listing(USER, status="confirmed,cancelled")["items"]] == ids[:2]
    both = client.get("/v1/bookings?status=confirmed&status=cancelled", headers=auth(USER)).json()
    assert [b["id"] for b in both["items"]] == ids[:2]
    window = listing(USER, **{"from": at(day_ahead(2), 0), "to": at(day_ahead(4), 0)})
    assert [b["id"] for b in window["items"]] == ids[1:3]

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = listing(USER, **params)
        pages.append([b["id"] for b in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    for params in ({"as": "admin"}, {"status": "lost"}, {"limit": 0}, {"limit": 1000}, {"cursor": "!!"},
                   {"cursor": "bm90LWEtY3Vyc29y"}, {"from": "2030-01-01T00:00:00"}):
        assert_problem(client.get("/v1/bookings", params=params, headers=auth(USER)), 422, "validation_error")


def test_lifecycle_confirm_then_cancel_with_refund(client, booking):
    url = f"/v1/bookings/{booking['id']}"
    assert_problem(client.post(f"{url}/confirm", headers=auth(USER)), 403, "forbidden")
    confirmed = client.post(f"{url}/confirm", headers=auth(EXPERT))
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert_problem(client.post(f"{url}/confirm", headers=auth(EXPERT)), 409, "invalid_state")
    assert_problem(client.post(f"{url}/cancel", json={}, headers=auth(USER)), 422, "validation_error")
    assert_problem(client.post(f"{url}/cancel", json={"reason": ""}, headers=auth(USER)), 422, "validation_error")
    cancelled = client.post(f"{url}/cancel", json={"reason": "sick"}, headers=auth(USER))
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["cancelledBy"] == "user" and body["cancellationReason"] == "sick"
    assert body["refundCents"] in (6000, 3000)  # 100% at >= 24 h before, 50% under (depends on the hour now)
    assert_problem(client.post(f"{url}/cancel", json={"reason": "again"}, headers=auth(USER)), 409, "invalid_state")


def test_decline(client, booking):
    url = f"/v1/bookings/{booking['id']}/decline"
    assert_problem(client.post(url, json={"reason": "no"}, headers=auth(USER)), 403, "forbidden")
    declined = client.post(url, json={"reason": "on holiday"}, headers=auth(EXPERT))
    assert declined.status_code == 200
    assert declined.json()["status"] == "cancelled" and declined.json()["cancelledBy"] == "expert"


def test_reschedule_raises_the_ics_sequence(client, booking):
    url = f"/v1/bookings/{booking['id']}"
    client.post(f"{url}/confirm", headers=auth(EXPERT))
    first = Calendar.from_ical(client.get(f"{url}.ics", headers=auth(USER)).content)
    event = first.walk("VEVENT")[0]
    assert str(event["UID"]) == f"{booking['id']}@calbook"
    assert int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "CONFIRMED"

    day = day_ahead(2)
    moved = client.post(f"{url}/reschedule", json={"newStartTime": at(day, 14)}, headers=auth(USER))
    assert moved.status_code == 200, moved.text
    assert moved.json()["startTime"] == at(day, 14) and moved.json()["status"] == "pending"
    response = client.get(f"{url}.ics", headers=auth(EXPERT))
    assert response.headers["content-type"].startswith("text/calendar")
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{booking['id']}@calbook"
    assert int(event["SEQUENCE"]) == 1 and str(event["STATUS"]) == "TENTATIVE"
    assert event.decoded("DTSTART").isoformat() == f"{day.isoformat()}T14:00:00+00:00"
    assert event.decoded("DTEND").isoformat() == f"{day.isoformat()}T15:00:00+00:00"
    assert "DTSTAMP" in event

    again = client.post(f"{url}/reschedule", json={"newStartTime": at(day, 9)}, headers=auth(EXPERT))
    assert again.status_code == 200 and again.json()["status"] == "pending"
    assert int(Calendar.from_ical(client.get(f"{url}.ics", headers=auth(USER)).content)
               .walk("VEVENT")[0]["SEQUENCE"]) == 2
    assert_problem(client.post(f"{url}/reschedule", json={"newStartTime": at(day, 22)}, headers=auth(USER)), 422,
                   "outside_availability")
    assert_problem(client.post(f"{url}/reschedule", json={"newStartTime": f"{day.isoformat()}T09:00:00"},
                               headers=auth(USER)), 422, "validation_error")
    client.post(f"{url}/cancel", json={"reason": "no"}, headers=auth(USER))
    event = Calendar.from_ical(client.get(f"{url}.ics", headers=auth(USER)).content).walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED"
    assert_problem(client.post(f"{url}/reschedule", json={"newStartTime": at(day, 11)}, headers=auth(USER)), 409,
                   "invalid_state")


def test_no_show_only_after_the_start(client, booking):
    url = f"/v1/bookings/{booking['id']}"
    client.post(f"{url}/confirm", headers=auth(EXPERT))
    assert_problem(client.post(f"{url}/no-show", headers=auth(EXPERT)), 409, "invalid_state")
    with time_machine.travel(day_ahead(1).isoformat() + "T10:20:00Z", tick=True):
        assert_problem(client.post(f"{url}/no-show", headers=auth(USER)), 403, "forbidden")
        assert_problem(client.post(f"{url}/cancel", json={"reason": "late"}, headers=auth(USER)), 409,
                       "invalid_state")
        marked = client.post(f"{url}/no-show", headers=auth(EXPERT))
        assert marked.status_code == 200 and marked.json()["status"] == "no_show"
    assert client.get(url, headers=auth(USER)).json()["status"] == "no_show"


def test_strangers_get_not_found_indistinguishable_from_missing(client, booking):
    url = f"/v1/bookings/{booking['id']}"
    missing = "/v1/bookings/00000000-0000-0000-0000-000000000000"
    for suffix, method, body in (("", "get", None), (".ics", "get", None), ("/confirm", "post", None),
                                 ("/cancel", "post", {"reason": "x"}), ("/no-show", "post", None),
                                 ("/decline", "post", {"reason": "x"}),
                                 ("/reschedule", "post", {"newStartTime": at(day_ahead(2), 10)})):
        theirs = client.request(method, url + suffix, json=body, headers=auth(STRANGER))
        nobody = client.request(method, missing + suffix, json=body, headers=auth(STRANGER))
        a, b = assert_problem(theirs, 404, "not_found"), assert_problem(nobody, 404, "not_found")
        assert {k: v for k, v in a.items() if k != "instance"} == {k: v for k, v in b.items() if k != "instance"}
        assert booking["id"] not in a["detail"]
    assert client.get(url, headers=auth(USER)).json()["status"] == "pending"
