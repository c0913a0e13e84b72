"""With a real ``celery worker`` process and the API on a real server: the subscription's validation
handshake, then a Graph change notification becomes a busy block, on both brokers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.microsoft_live import live_microsoft, one_hour, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


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
    with live_microsoft(db_url, broker_url, tmp_path / "data") as live:
        (subscription,) = live.fake.subscriptions.values()  # validated against the API's real URL
        assert subscription["notificationUrl"] == live.base + "/v1/webhooks/microsoft"
        before = live.busy()
        live.fake.put_event("AAMkWork==", one_hour(3, 13))
        assert live.notify() == 202
        try:
            blocks = wait_until(lambda: [b for b in live.busy() if b not in before], what="the new busy block")
        except AssertionError:
            raise AssertionError(live.log_text()[-4000:]) from None
        (block,) = blocks
        assert block["start"][11:16] == "13:00" and block["end"][11:16] == "14:00"
