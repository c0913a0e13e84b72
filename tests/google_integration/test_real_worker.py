"""With a real ``celery worker`` process: a Google notification becomes a busy block in the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from booking_engine.clock import utcnow
from tests.support.google_integration import ACCOUNT
from tests.support.google_live import live_google, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[str]:
    """The Redis database of this test run, emptied before and after."""
    url = redis_url  # the run's own Redis database (CALBOOK_TEST_REDIS_URL)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _one_hour(days: int, hour: int) -> dict[str, dict[str, str]]:
    start = (utcnow() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return {"start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}}


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_notification_reaches_busy_times_through_a_worker(
    broker: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if broker == "redis":
        db_url, broker_url = request.getfixturevalue("pg_url"), request.getfixturevalue("redis_broker")
        from tests.support.db import truncate_all

        truncate_all(request.getfixturevalue("pg_store"))
    else:
        db_url = request.getfixturevalue("sqlite_url")
        broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    with live_google(db_url, broker_url, tmp_path / "data") as live:
        before = live.busy()
        live.fake.add_event(ACCOUNT, {"summary": "Dentist", **_one_hour(3, 13)})

        assert live.notify() == 200

        try:
            blocks = wait_until(lambda: [b for b in live.busy() if b not in before], what="the new busy block")
        except AssertionError:
            raise AssertionError(live.log_text()[-4000:]) from None
        (block,) = blocks
        assert block["start"][11:16] == "13:00" and block["end"][11:16] == "14:00"
