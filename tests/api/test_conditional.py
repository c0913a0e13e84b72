"""Conditional GETs of slots, the month view, busy times and availability (docs/api.md#conditional-requests).

Each test sees the ETag change (or hold) through the real app on SQLite and PostgreSQL;
writes go through the API or, for busy blocks, the store as the worker writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import insert

from api.conditional import answer_time, none_match
from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from booking_engine.store.tables import busy_blocks
from tests.support.api import EXPERT, USER, at, auth, booking_body, day_ahead


def _slots(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> Any:
    query = {"date": day_ahead().isoformat(), "duration": 60, **params}
    return client.get(f"/v1/experts/{EXPERT}/slots", params=query, headers={**auth(USER), **(headers or {})})


def _month(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    month = day_ahead().strftime("%Y-%m")
    return client.get(f"/v1/experts/{EXPERT}/calendar", params={"month": month},
                      headers={**auth(USER), **(headers or {})})


def _busy(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    day = day_ahead()
    return client.get(f"/v1/experts/{EXPERT}/busy", params={"from": at(day, 0), "to": at(day + timedelta(days=1), 0)},
                      headers={**auth(USER), **(headers or {})})


def test_unchanged_expert_is_304_with_the_etag_and_no_body(client: TestClient, expert: AvailabilitySettings) -> None:
    for get in (_slots, _month, _busy):
        first = get(client)
        tag = first.headers["ETag"]
        assert first.status_code == 200 and tag.startswith('"') and tag.endswith('"')
        again = get(client, {"If-None-Match": tag})
        assert again.status_code == 304 and again.headers["ETag"] == tag and again.content == b""


def test_availability_304_on_the_settings_version(client: TestClient, expert: AvailabilitySettings) -> None:
    url = f"/v1/experts/{EXPERT}/availability"
    tag = client.get(url, headers=auth(USER)).headers["ETag"]
    again = client.get(url, headers={**auth(USER), "If-None-Match": tag})
    assert again.status_code == 304 and again.headers["ETag"] == tag and again.content == b""


def test_if_none_match_lists_weak_tags_and_star(client: TestClient, expert: AvailabilitySettings) -> None:
    tag = _slots(client).headers["ETag"]
    assert _slots(client, {"If-None-Match": f'"nope", W/{tag}'}).status_code == 304
    assert _slots(client, {"If-None-Match": "*"}).status_code == 304
    assert _slots(client, {"If-None-Match": '"nope"'}).status_code == 200
    assert none_match(f" {tag} ,\"x\"", tag) and not none_match(None, tag) and not none_match("", tag)


def test_etag_differs_by_parameters(client: TestClient, expert: AvailabilitySettings) -> None:
    tags = {
        _slots(client).headers["ETag"],
        _slots(client, duration=90).headers["ETag"],
        _slots(client, tz="Europe/Berlin").headers["ETag"],
        _slots(client, date=day_ahead(2).isoformat()).headers["ETag"],
    }
    assert len(tags) == 4
    tag = _slots(client).headers["ETag"]
    assert _slots(client, {"If-None-Match": tag}, duration=90).status_code == 200


def test_a_booking_changes_the_answer(client: TestClient, expert: AvailabilitySettings) -> None:
    before = {get: get(client) for get in (_slots, _month, _busy)}
    assert client.post("/v1/bookings", json=booking_body(), headers=auth(USER)).status_code == 201
    for get, old in before.items():
        new = get(client, {"If-None-Match": old.headers["ETag"]})
        assert new.status_code == 200 and new.headers["ETag"] != old.headers["ETag"]
    assert _slots(client).json() != before[_slots].json() and _busy(client).json() != before[_busy].json()


def test_settings_and_exceptions_change_the_answer(client: TestClient, expert: AvailabilitySettings) -> None:
    old = _slots(client)
    url = f"/v1/experts/{EXPERT}/availability"
    current = client.get(url, headers=auth(EXPERT))
    body = {**current.json(), "hourlyRateCents": 12000}
    body.pop("version", None)
    put = client.put(url, json=body, headers={**auth(EXPERT), "If-Match": current.headers["ETag"]})
    assert put.status_code == 200, put.text
    new = _slots(client, {"If-None-Match": old.headers["ETag"]})
    assert new.status_code == 200 and new.json() != old.json()
    assert client.get(url, headers={**auth(USER), "If-None-Match": current.headers["ETag"]}).status_code == 200

    exc = client.put(f"/v1/experts/{EXPERT}/exceptions/{day_ahead().isoformat()}", json={"type": "unavailable"},
                     headers=auth(EXPERT))
    assert exc.status_code in (200, 201), exc.text
    closed = _slots(client, {"If-None-Match": new.headers["ETag"]})
    assert closed.status_code == 200 and closed.json()["slots"] == []


def test_a_busy_block_written_by_the_worker_changes_the_answer(
    client: TestClient, store: Store, expert: AvailabilitySettings
) -> None:
    old = _slots(client)
    start = datetime.fromisoformat(at(day_ahead(), 9))
    with store.write() as conn:
        conn.execute(insert(busy_blocks).values(expert_id=EXPERT, calendar_id="c", external_id="e",
                                                start_time=start, end_time=start + timedelta(hours=8)))
    new = _slots(client, {"If-None-Match": old.headers["ETag"]})
    assert new.status_code == 200
    assert all(s["status"] != "available" for s in new.json()["slots"])


def test_no_304_before_authentication_or_for_an_unknown_expert(
    client: TestClient, expert: AvailabilitySettings
) -> None:
    tag = _slots(client).headers["ETag"]
    query = {"date": day_ahead().isoformat(), "duration": 60}
    anonymous = client.get(f"/v1/experts/{EXPERT}/slots", params=query, headers={"If-None-Match": tag})
    assert anonymous.status_code == 401
    bad = client.get(f"/v1/experts/{EXPERT}/slots", params=query,
                     headers={"If-None-Match": "*", "Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    unknown = client.get("/v1/experts/nobody-at-all/slots", params=query, headers={**auth(USER), "If-None-Match": "*"})
    assert unknown.status_code == 404


def test_time_passing_changes_the_tag_and_the_slots(client: TestClient, expert: AvailabilitySettings) -> None:
    """The 10:00 slot stops being bookable when its notice runs out: a tag from before must not hold."""
    day = day_ahead(2)
    ten = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    deadline = ten - timedelta(minutes=expert.min_notice)

    def open_at_ten(response: Any) -> bool:
        return any(s["start"] == at(day, 10) and s["status"] == "available" for s in response.json()["slots"])

    with time_machine.travel(deadline - timedelta(seconds=90), tick=False):
        early = _slots(client, date=day.isoformat())
        assert open_at_ten(early)
        assert _slots(client, {"If-None-Match": early.headers["ETag"]}, date=day.isoformat()).status_code == 304
    with time_machine.travel(deadline + timedelta(seconds=30), tick=False):
        later = _slots(client, {"If-None-Match": early.headers["ETag"]}, date=day.isoformat())
        assert later.status_code == 200 and later.headers["ETag"] != early.headers["ETag"]
        assert not open_at_ten(later)


def test_answer_time_rounds_up_to_the_minute() -> None:
    exact = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert answer_time(exact) == exact
    assert answer_time(exact + timedelta(microseconds=1)) == exact + timedelta(minutes=1)
    assert answer_time(exact + timedelta(seconds=59)) == exact + timedelta(minutes=1)
