"""Malformed requests of every kind end as a 4xx problem document; nothing leaks from a 500."""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import OperationalError

from booking_engine.services import bookings
from tests.support.api import EXPERT, PROBLEM, USER, assert_problem, at, auth, booking_body, day_ahead


def test_unknown_route_and_method(client):
    body = assert_problem(client.get("/v1/nothing-here", headers=auth(USER)), 404, "not_found")
    assert body["instance"] == "/v1/nothing-here"
    response = client.delete("/v1/bookings", headers=auth(USER))
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_malformed_json_and_wrong_types(client, expert):
    headers = {**auth(USER), "Content-Type": "application/json"}
    for raw in (b"{", b"not json", b"[1, 2]", b"null", b'{"expertId": }', b"\xff\xfe"):
        assert_problem(client.post("/v1/bookings", content=raw, headers=headers), 422, "validation_error")
    body = assert_problem(client.post("/v1/bookings", json=booking_body(durationMinutes="60"), headers=auth(USER)),
                          422, "validation_error")
    assert body["errors"][0]["field"] == "body.durationMinutes"
    for wrong in ({"durationMinutes": 60.5}, {"durationMinutes": True}, {"expertId": 7}, {"startTime": 1893456000},
                  {"topic": ["a"]}, {"type": None}):
        assert_problem(client.post("/v1/bookings", json=booking_body(**wrong), headers=auth(USER)), 422,
                       "validation_error")


def test_unknown_fields_are_refused(client, expert):
    body = assert_problem(client.post("/v1/bookings", json=booking_body(userId="someone-else"), headers=auth(USER)),
                          422, "validation_error")
    assert any(e["field"] == "body.userId" for e in body["errors"])
    assert_problem(client.post("/v1/bookings/x/cancel", json={"reason": "r", "refund": 100}, headers=auth(USER)),
                   422, "validation_error")


def test_naive_and_out_of_range_datetimes(client, expert):
    day = day_ahead().isoformat()
    for start in (f"{day}T10:00:00", f"{day} 10:00", "tomorrow", "9999-12-31T23:59:59-23:59",
                  "0001-01-01T00:00:00+01:00", f"{day}T25:00:00Z", ""):
        body = assert_problem(client.post("/v1/bookings", json=booking_body(startTime=start), headers=auth(USER)),
                              422, "validation_error")
        assert body["errors"]


def test_nul_bytes_and_oversized_ids(client, expert):
    assert_problem(client.post("/v1/bookings", json=booking_body(topic="a\u0000b"), headers=auth(USER)), 422,
                   "validation_error")
    assert_problem(client.post("/v1/bookings", json=booking_body(expertId="e" * 65), headers=auth(USER)), 422,
                   "validation_error")
    assert_problem(client.get("/v1/bookings/" + "b" * 65, headers=auth(USER)), 422, "validation_error")
    assert_problem(client.get("/v1/experts/%00/slots", params={"date": day_ahead().isoformat(), "duration": 60},
                              headers=auth(USER)), 422, "validation_error")


def test_huge_bodies_are_413(client, api_settings, expert):
    limit = api_settings.request_max_body_bytes
    padded = booking_body(notes="x" * (limit + 10))
    assert_problem(client.post("/v1/bookings", json=padded, headers=auth(USER)), 413, "payload_too_large")

    def chunks():
        raw = json.dumps(padded).encode()
        for i in range(0, len(raw), 65536):
            yield raw[i:i + 65536]

    chunked = client.post("/v1/bookings", content=chunks(),
                          headers={**auth(USER), "Content-Type": "application/json"})
    assert_problem(chunked, 413, "payload_too_large")
    # Just under the limit passes the middleware; the notes limit then speaks.
    assert_problem(client.post("/v1/bookings", json=booking_body(notes="x" * 6000), headers=auth(USER)), 422,
                   "validation_error")


def test_unexpected_errors_are_a_bare_500_and_logged(client, expert, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret-internal-detail postgresql://user:pw@db")

    monkeypatch.setattr(bookings, "create_booking", explode)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text and "postgresql" not in response.text
    assert body["instance"] == "/v1/bookings"
    record = next(r for r in caplog.records if r.name == "api.errors")
    assert record.exc_info and record.path == "/v1/bookings" and record.method == "POST"


def test_database_outage_is_503(client, expert, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(bookings, "get_booking", down)
    response = client.get("/v1/bookings/abc", headers=auth(USER))
    assert_problem(response, 503, "service_unavailable")
    assert "connection refused" not in response.text and response.headers["retry-after"]


def test_problem_documents_name_the_field(client, expert):
    response = client.post("/v1/bookings", json=booking_body(hour=20), headers=auth(USER))
    body = assert_problem(response, 422, "outside_availability")
    assert response.headers["content-type"] == PROBLEM
    assert body["type"] == "urn:calbook:problem:outside_availability"
    assert client.post("/v1/bookings", json={**booking_body(), "startTime": at(day_ahead(), 10)},
                       headers=auth(USER)).status_code == 201
    assert EXPERT


def test_a_body_without_json_content_type_is_415_saying_what_to_send(client, expert):
    raw = json.dumps(booking_body()).encode()
    for sent in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        response = client.post("/v1/bookings", content=raw, headers={**auth(USER), **sent})
        body = assert_problem(response, 415, "unsupported_media_type")
        assert "'Content-Type: application/json'" in body["detail"], body
        assert response.headers["accept-post"] == "application/json"
    patched = client.patch("/v1/calendar-connections/abc", content=b'{"busyCalendars": []}', headers=auth(EXPERT))
    assert_problem(patched, 415, "unsupported_media_type")
    assert patched.headers["accept-patch"] == "application/json"
    # JSON with parameters, and an empty body (a missing body is a validation problem), are not 415.
    typed = client.post("/v1/bookings", content=raw,
                        headers={**auth(USER), "Content-Type": "application/json; charset=utf-8"})
    assert typed.status_code == 201, typed.text
    assert_problem(client.post("/v1/bookings", headers=auth(USER)), 422, "validation_error")


def test_malformed_json_is_reported_by_line_and_column(client, expert):
    raw = b'{\n  "expertId": "expert-1",\n  "startTime": ,\n  "durationMinutes": 60\n}'
    body = assert_problem(client.post("/v1/bookings", content=raw,
                                      headers={**auth(USER), "Content-Type": "application/json"}),
                          422, "validation_error")
    assert body["errors"] == [{"field": "body", "type": "json_invalid",
                               "message": "malformed JSON at line 3, column 16: Expecting value"}]
    assert body["detail"] == "body: malformed JSON at line 3, column 16: Expecting value"
    one_line = assert_problem(client.post("/v1/bookings", content=b'{"expertId": }',
                                          headers={**auth(USER), "Content-Type": "application/json"}),
                              422, "validation_error")
    assert one_line["errors"][0]["message"] == "malformed JSON at line 1, column 14: Expecting value"


def test_an_unknown_tz_is_reported_under_the_parameter_sent(client, expert):
    day = day_ahead().isoformat()
    for path, params in ((f"/v1/experts/{EXPERT}/slots", {"date": day, "duration": 60}),
                         (f"/v1/experts/{EXPERT}/calendar", {"month": day[:7]})):
        body = assert_problem(client.get(path, params={**params, "tz": "Mars/Olympus_Mons"}, headers=auth(USER)),
                              422, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["query.tz"], body
        assert "Mars/Olympus_Mons" in body["detail"] and body["detail"].startswith("query.tz: ")
        assert client.get(path, params={**params, "tz": "Europe/Berlin"}, headers=auth(USER)).status_code == 200
