"""Graph's ``Retry-After`` as an HTTP-date is read too (connectors/retry_after.py), and junk is no wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import TransientError
from connectors.factory import open_provider
from tests.support.fakes.microsoft_graph import FakeGraph


def _provider(store: Store, settings: Settings, connection_id: str) -> Any:
    connection = connection_service.load_for_sync(store, connection_id)
    assert connection is not None
    return open_provider(connection, settings, "UTC")


def test_a_retry_after_date_becomes_seconds_from_now(connected: dict[str, Any], fake: FakeGraph, store: Store,
                                                     settings: Settings, sleeps: list[float]) -> None:
    when = datetime.now(UTC) + timedelta(minutes=2)
    fake.fail_next("me/calendars", 429, {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    with _provider(store, settings, connected["id"]) as provider, pytest.raises(TransientError) as raised:
        provider.list_calendars()
    assert raised.value.retry_after is not None and 100 < raised.value.retry_after <= 120 and sleeps == []


def test_a_negative_retry_after_is_no_wait_at_all(connected: dict[str, Any], fake: FakeGraph, store: Store,
                                                  settings: Settings, sleeps: list[float]) -> None:
    """"-5" is no delta-seconds: the client's own backoff applies (it used to read as 0 s)."""
    fake.fail_next("me/calendars", 429, {"Retry-After": "-5"})
    with _provider(store, settings, connected["id"]) as provider:
        provider.list_calendars()
    assert len(sleeps) == 1 and sleeps[0] > 0
