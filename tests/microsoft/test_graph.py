"""The Graph client and provider beyond sync: per-mailbox concurrency, the token endpoint setting,
getSchedule, a Retry-After too long to sleep on."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from booking_engine.clock import utcnow
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.accounts import ProviderAccounts
from connectors.base import TransientError
from connectors.factory import open_provider
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import WORK, event


def _provider(store: Store, settings: Settings, connection_id: str) -> Any:
    connection = connection_service.load_for_sync(store, connection_id)
    assert connection is not None
    return open_provider(connection, settings, "UTC")


def test_at_most_four_requests_per_mailbox(connected: dict[str, Any], fake: FakeGraph, store: Store,
                                           settings: Settings) -> None:
    fake.delay = 0.2
    providers = [_provider(store, settings, connected["id"]) for _ in range(8)]
    threads = [threading.Thread(target=p.list_calendars) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for provider in providers:
        provider.close()
    assert fake.max_in_flight == 4


def test_the_token_endpoint_setting_is_used(connected: dict[str, Any], fake: FakeGraph, store: Store,
                                            settings: Settings) -> None:
    settings.microsoft_token_endpoint = fake.base + "/alt/token"
    with _provider(store, settings, connected["id"]) as provider:
        provider.graph._credentials["expires_at"] = 0  # due for a refresh
        provider.list_calendars()
    assert fake.requests["token-alt"] == 1


def test_a_retry_after_too_long_is_not_slept_on(connected: dict[str, Any], fake: FakeGraph, store: Store,
                                                settings: Settings, sleeps: list[float]) -> None:
    fake.fail_next("me/calendars", 429, {"Retry-After": "120"})
    with _provider(store, settings, connected["id"]) as provider, pytest.raises(TransientError) as raised:
        provider.list_calendars()
    assert raised.value.retry_after == 120 and sleeps == []


def test_get_schedule_re_check(connected: dict[str, Any], fake: FakeGraph, store: Store, settings: Settings) -> None:
    accounts = ProviderAccounts(settings)
    assert not accounts.answers_free_busy("microsoft")  # off unless CALBOOK_MICROSOFT_FREEBUSY_CHECK
    settings.microsoft_freebusy_check = True
    assert accounts.answers_free_busy("microsoft")
    assert not accounts.answers_free_busy("google")  # each provider's check has its own switch
    taken = fake.put_event(WORK, event(3, 10))
    fake.put_event(WORK, event(4, 10, showAs="free"))
    connection = connection_service.load_for_sync(store, connected["id"])
    assert connection is not None
    day3 = (utcnow() + timedelta(days=3)).replace(hour=10, minute=30, second=0, microsecond=0)
    day4 = day3 + timedelta(days=1)

    def check(start: Any) -> bool:
        return accounts.busy_between(connection, start, start + timedelta(minutes=30), "UTC", lambda _: None)

    assert check(day3) is True
    assert check(day4) is False
    fake.schedule_error = True
    assert check(day4) is True  # an error in the answer counts as busy
    assert taken["id"]
    # A range over 42 days is asked in windows under 42 days.
    fake.schedule_error = False
    fake.log.clear()
    with _provider(store, settings, connected["id"]) as provider:
        provider.freebusy([WORK], day3, day3 + timedelta(days=90))
    assert [p for _, p in fake.log].count("me/calendar/getSchedule") == 3
