"""``GET /v1/experts`` and ``/v1/experts/{id}``, and ``headline``/``bio`` on ``PUT /v1/me`` (issue 14)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from tests.support.api import USER, assert_problem, auth
from tests.support.factories import publish


def test_only_experts_with_published_settings_are_listed_with_public_fields(client: TestClient, store: Store) -> None:
    for expert in ("exp-a", "exp-b", "exp-c"):
        put = client.put("/v1/me", json={"displayName": expert.upper(), "email": f"{expert}@example.org",
                                         "headline": f"{expert} headline", "bio": "Long text"},
                         headers=auth(expert))
        assert put.status_code == 200 and put.json()["headline"] == f"{expert} headline", put.text
    publish(store, "exp-a", now=utcnow())
    publish(store, "exp-c", now=utcnow())
    listed = client.get("/v1/experts", headers=auth(USER))
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    assert [e["id"] for e in items] == ["exp-a", "exp-c"]  # exp-b has published nothing
    assert items[0] == {"id": "exp-a", "displayName": "EXP-A", "headline": "exp-a headline", "bio": "Long text",
                        "timezone": "UTC", "hourlyRateCents": 6000, "currency": "USD",
                        "minBookingDurationMinutes": 60, "maxBookingDurationMinutes": 180}
    assert "email" not in listed.text


def test_the_directory_pages_with_the_cursor(client: TestClient, store: Store) -> None:
    for n in range(5):
        publish(store, f"page-{n}", now=utcnow())
    seen: list[str] = []
    cursor = None
    while True:
        answer = client.get("/v1/experts", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                            headers=auth(USER)).json()
        seen += [e["id"] for e in answer["items"]]
        cursor = answer["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"page-{n}" for n in range(5)] and len(seen) == 5
    assert_problem(client.get("/v1/experts", params={"cursor": "bad"}, headers=auth(USER)), 422, "validation_error")


def test_one_profile_and_404_for_unknown_or_unpublished(client: TestClient, store: Store) -> None:
    publish(store, "exp-one", now=utcnow())
    assert client.get("/v1/experts/exp-one", headers=auth(USER)).json()["id"] == "exp-one"
    client.put("/v1/me", json={"headline": "not published"}, headers=auth("exp-none"))
    assert_problem(client.get("/v1/experts/exp-none", headers=auth(USER)), 404, "not_found")
    assert_problem(client.get("/v1/experts/nobody", headers=auth(USER)), 404, "not_found")
    assert client.get("/v1/experts").status_code == 401


def test_headline_with_a_line_break_is_refused(client: TestClient) -> None:
    assert_problem(client.put("/v1/me", json={"headline": "two\nlines"}, headers=auth(USER)), 422, "validation_error")
    assert_problem(client.put("/v1/me", json={"bio": "x" * 4001}, headers=auth(USER)), 422, "validation_error")
