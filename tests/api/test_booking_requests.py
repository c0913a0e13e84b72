"""Booking requests over HTTP (docs/lifecycle.md#booking-requests): propose, accept or reject, withdraw, list."""

from __future__ import annotations

from tests.support.api import EXPERT, STRANGER, USER, assert_problem, at, auth, day_ahead


def request_body(**overrides):
    body = {
        "expertId": EXPERT,
        "requestedDurationMinutes": 60,
        "type": "audio_call",
        "proposedSlots": [{"startTime": at(day_ahead(2), 10)}, {"startTime": at(day_ahead(3), 14)}],
        "message": "either works",
    }
    body.update(overrides)
    return body


def test_create_get_and_accept(client, expert):
    created = client.post("/v1/booking-requests", json=request_body(), headers=auth(USER))
    assert created.status_code == 201, created.text
    request = created.json()
    assert created.headers["location"] == f"/v1/booking-requests/{request['id']}"
    assert request["status"] == "pending" and request["userId"] == USER and len(request["proposedSlots"]) == 2
    assert request["proposedSlots"][1] == {"startTime": at(day_ahead(3), 14), "endTime": at(day_ahead(3), 15)}
    url = f"/v1/booking-requests/{request['id']}"
    assert client.get(url, headers=auth(EXPERT)).json() == request
    assert_problem(client.get(url, headers=auth(STRANGER)), 404, "not_found")
    assert_problem(client.post(f"{url}/respond", json={"accept": True, "slotIndex": 1}, headers=auth(USER)), 403,
                   "forbidden")
    assert_problem(client.post(f"{url}/respond", json={"accept": True, "slotIndex": 1}, headers=auth(STRANGER)),
                   404, "not_found")
    assert_problem(client.post(f"{url}/respond", json={"accept": True, "slotIndex": 7}, headers=auth(EXPERT)),
                   422, "validation_error")
    assert_problem(client.post(f"{url}/respond", json={"accept": "yes"}, headers=auth(EXPERT)),
                   422, "validation_error")
    accepted = client.post(f"{url}/respond", json={"accept": True, "slotIndex": 1, "message": "see you"},
                           headers=auth(EXPERT))
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted" and body["acceptedSlotIndex"] == 1 and body["responseMessage"] == "see you"
    booking = client.get(f"/v1/bookings/{body['bookingId']}", headers=auth(USER)).json()
    assert booking["status"] == "confirmed" and booking["startTime"] == at(day_ahead(3), 14)
    assert_problem(client.post(f"{url}/withdraw", headers=auth(USER)), 409, "invalid_state")


def test_reject_withdraw_and_list(client, expert):
    first = client.post("/v1/booking-requests", json=request_body(), headers=auth(USER)).json()
    second = client.post("/v1/booking-requests", json=request_body(), headers=auth(USER)).json()
    rejected = client.post(f"/v1/booking-requests/{first['id']}/respond", json={"accept": False},
                           headers=auth(EXPERT))
    assert rejected.json()["status"] == "rejected"
    assert_problem(client.post(f"/v1/booking-requests/{second['id']}/withdraw", headers=auth(EXPERT)), 403,
                   "forbidden")
    assert_problem(client.post(f"/v1/booking-requests/{second['id']}/withdraw", headers=auth(STRANGER)), 404,
                   "not_found")
    withdrawn = client.post(f"/v1/booking-requests/{second['id']}/withdraw", headers=auth(USER))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"

    # Newest first (the store's order for requests).
    mine = client.get("/v1/booking-requests", headers=auth(USER)).json()
    assert [r["id"] for r in mine["items"]] == [second["id"], first["id"]] and mine["nextCursor"] is None
    page = client.get("/v1/booking-requests", params={"limit": 1}, headers=auth(USER)).json()
    assert [r["id"] for r in page["items"]] == [second["id"]] and page["nextCursor"]
    rest = client.get("/v1/booking-requests", params={"limit": 1, "cursor": page["nextCursor"]},
                      headers=auth(USER)).json()
    assert [r["id"] for r in rest["items"]] == [first["id"]] and rest["nextCursor"] is None
    as_expert = client.get("/v1/booking-requests", params={"as": "expert", "status": "withdrawn"},
                           headers=auth(EXPERT)).json()
    assert [r["id"] for r in as_expert["items"]] == [second["id"]]
    assert client.get("/v1/booking-requests", headers=auth(STRANGER)).json()["items"] == []


def test_request_validation(client, expert):
    six = [{"startTime": at(day_ahead(2), h)} for h in range(9, 15)]
    cases = [
        (request_body(proposedSlots=[]), "validation_error"),
        (request_body(proposedSlots=six), "validation_error"),
        (request_body(proposedSlots=[{"startTime": f"{day_ahead(2).isoformat()}T10:00:00"}]), "validation_error"),
        (request_body(requestedDurationMinutes=30), "duration_too_short"),
        (request_body(proposedSlots=[{"startTime": at(day_ahead(-2), 10)}]), "in_the_past"),
        (request_body(expertId=USER), "validation_error"),
        (request_body(userId=STRANGER), "validation_error"),
    ]
    for body, code in cases:
        assert_problem(client.post("/v1/booking-requests", json=body, headers=auth(USER)), 422, code)
