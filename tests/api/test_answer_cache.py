"""The answer cache of the read views (api/answer_cache.py): a hit is the same bytes a fresh
computation gives, a write or the clock gives a new answer, and one caller's view is never handed
to another when it may differ. Real app on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import time_machine
from fastapi.testclient import TestClient

from api.answer_cache import AnswerCache
from api.app import create_app
from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from tests.support.api import EXPERT, USER, auth, booking_body, day_ahead, make_settings


def _slots(client: TestClient, who: str = USER) -> Any:
    return client.get(f"/v1/experts/{EXPERT}/slots", params={"date": day_ahead().isoformat(), "duration": 60},
                      headers=auth(who))


def _month(client: TestClient, who: str = USER) -> Any:
    return client.get(f"/v1/experts/{EXPERT}/calendar", params={"month": day_ahead().strftime("%Y-%m")},
                      headers=auth(who))


def _answers(client: TestClient) -> AnswerCache:
    return client.app.state.answers  # type: ignore[attr-defined,no-any-return]


def test_a_repeated_read_is_a_hit_with_the_bytes_a_fresh_computation_gives(
    client: TestClient, store: Store, expert: AvailabilitySettings, tmp_path: Path
) -> None:
    uncached = create_app(store, make_settings(tmp_path / "off", answer_cache_entries=0))
    with time_machine.travel(datetime.now(UTC), tick=False), TestClient(uncached) as fresh:
        first, second = _slots(client), _slots(client)
        assert _answers(client).hits == 1 and second.content == first.content
        assert second.headers["ETag"] == first.headers["ETag"]
        computed = _slots(fresh)
        assert len(_answers(fresh)) == 0
        assert computed.headers["ETag"] == first.headers["ETag"] and computed.content == first.content


def test_a_booking_between_two_reads_is_in_the_second_answer(
    client: TestClient, expert: AvailabilitySettings
) -> None:
    before_slots, before_month = _slots(client), _month(client)
    assert _slots(client).content == before_slots.content  # now cached
    booked = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert booked.status_code == 201, booked.text
    after = _slots(client)
    assert after.headers["ETag"] != before_slots.headers["ETag"]
    start = booked.json()["startTime"]
    statuses = {s["start"]: s["status"] for s in after.json()["slots"]}
    assert statuses[start] != "available"
    assert _month(client).headers["ETag"] != before_month.headers["ETag"]


def test_the_experts_own_view_is_never_cached(client: TestClient, expert: AvailabilitySettings) -> None:
    _slots(client, EXPERT)
    _month(client, EXPERT)
    assert len(_answers(client)) == 0
    _slots(client, USER)
    assert len(_answers(client)) == 1


def test_the_cache_keeps_at_most_its_size_and_drops_the_least_recent() -> None:
    cache = AnswerCache(2)
    cache.put('"a"', b"A")
    cache.put('"b"', b"B")
    assert cache.get('"a"') == b"A"  # a is now the most recent
    cache.put('"c"', b"C")
    assert len(cache) == 2 and cache.get('"b"') is None and cache.get('"a"') == b"A" and cache.get('"c"') == b"C"
    assert cache.get(None) is None
    off = AnswerCache(0)
    off.put('"a"', b"A")
    assert off.get('"a"') is None and len(off) == 0
