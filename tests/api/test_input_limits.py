"""Small input rules: no epoch numbers for instants, IANA zone names only, limits in the OpenAPI document."""

from __future__ import annotations

from tests.support.api import EXPERT, USER, assert_problem, at, auth, day_ahead


def test_query_instants_refuse_epoch_numbers(client, expert):
    for value in ("0.5", "1700000000", "1e3", "-1", "2030", "20300101T000000Z"):
        for path in ("/v1/bookings", f"/v1/experts/{EXPERT}/busy"):
            params = {"to": value} if path != f"/v1/experts/{EXPERT}/busy" else {
                "from": at(day_ahead(), 0), "to": value}
            body = assert_problem(client.get(path, params=params, headers=auth(USER)), 422, "validation_error")
            assert body["errors"][0]["field"].endswith("to"), (path, value, body)
    ok = client.get("/v1/bookings", params={"to": at(day_ahead(3), 0)}, headers=auth(USER))
    assert ok.status_code == 200, ok.text


def test_zone_keys_that_are_not_iana_names_are_refused(client, expert):
    for key in ("localtime", "Factory", "right/UTC", "posix/UTC", "posixrules", "../zoneinfo/UTC",
                "/usr/share/zoneinfo/UTC", "zone.tab", "tzdata.zi", "UTC\n"):
        body = assert_problem(client.put("/v1/me", json={"timezone": key}, headers=auth(USER)), 422,
                              "validation_error")
        assert body["errors"][0]["field"] == "timezone", key
        slots = client.get(f"/v1/experts/{EXPERT}/slots",
                           params={"date": str(day_ahead()), "duration": 60, "tz": key}, headers=auth(USER))
        assert_problem(slots, 422, "validation_error")
    for key in ("UTC", "Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "US/Eastern"):
        assert client.put("/v1/me", json={"timezone": key}, headers=auth(USER)).status_code == 200, key


def test_the_openapi_document_states_the_limits(client):
    document = client.get("/openapi.json").json()
    [to] = [p for p in document["paths"]["/v1/bookings"]["get"]["parameters"] if p["name"] == "to"]
    instant = next(s for s in to["schema"]["anyOf"] if s.get("type") == "string")
    assert instant["format"] == "date-time"
    assert instant["x-minimum-year"] == 1970 and instant["x-maximum-year"] == 2999
    assert "1970" in instant["description"] and "2999" in instant["description"]
    create = document["components"]["schemas"]["BookingCreate"]["properties"]
    topic = next(s for s in create["topic"]["anyOf"] if s.get("type") == "string")
    assert topic["pattern"] == "^[^\\u0000]*$"
