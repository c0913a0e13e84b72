"""Every outbound request of the CalDAV and ICS connectors takes its turn in the shared limiter
(counted against what a real Radicale and a feed server answered), a host limit refuses past its
bound, a feed's 429 keeps other workers off its host; the limiter without its store, its settings,
its log lines."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from booking_engine.clock import utcnow
from booking_engine.connections import Provider
from config.settings import RateLimitSection, Settings
from connectors.base import TransientError
from connectors.caldav.http import DavReply
from connectors.factory import open_account
from connectors.ics.provider import FEED_CALENDAR_ID
from connectors.rate_limits import UNLIMITED, provider_limits
from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.limits import Bucket, Rate, RequestPlan
from connectors.rate_limits.memory_store import MemoryStore
from connectors.rate_limits.provider_limits import ProviderLimits
from connectors.rate_limits.redis_store import RedisStore
from connectors.rate_limits.shared import store_of
from connectors.secrets import encrypt_json
from tests.support.caldav import Direct
from tests.support.caldav_servers import CalDAVServer
from tests.support.feed_server import FeedState
from tests.support.rate_limits import SharedStore, open_store


def _settings(tmp_path: Path, prefix: str, **limits: Any) -> Settings:
    return Settings(data_dir=tmp_path, allow_private_urls=True,
                    rate_limit=RateLimitSection(key_prefix=prefix, **limits))


def _caldav(radicale: CalDAVServer, settings: Settings, limits: ProviderLimits) -> Any:
    account = radicale.new_account()
    Direct(radicale.port, account).make_calendar()
    secret = encrypt_json({"username": account.username, "password": account.password},
                          settings.resolved_encryption_key())
    provider = open_account(Provider.CALDAV, secret, settings, "UTC", account=account.username,
                            config={"url": radicale.url.rstrip("/") + radicale.root}, limits=limits)
    answered: list[int] = []

    def observe(method: str, reply: DavReply, seconds: float) -> None:
        answered.append(reply.status)

    provider.http.observer = observe
    return provider, answered


def test_caldav_requests_to_radicale_take_their_turn(shared: SharedStore, limiter: RateLimiter,
                                                     radicale: CalDAVServer, tmp_path: Path) -> None:
    turns: list[str] = []
    limiter.on_grant = lambda plan: turns.append(plan.label)
    settings = _settings(tmp_path, shared.prefix)
    provider, answered = _caldav(radicale, settings, ProviderLimits(limiter, settings.rate_limit))
    with provider:
        calendars = provider.list_calendars()
        now = utcnow()
        provider.pull(calendars[0].id, None, now, now + timedelta(days=30), "UTC")
    assert len(answered) >= 3
    assert len(turns) == len(answered)  # every request, redirects and discovery included
    assert len(set(turns)) == 1 and "127.0.0.1" not in turns[0]  # one host, its key hashed


def test_a_caldav_host_limit_refuses_past_its_bound(shared: SharedStore, limiter: RateLimiter,
                                                    radicale: CalDAVServer, tmp_path: Path) -> None:
    settings = _settings(tmp_path, shared.prefix, caldav_host_per_second=0.01, caldav_host_burst=2,
                         max_wait_seconds=0)
    provider, answered = _caldav(radicale, settings, ProviderLimits(limiter, settings.rate_limit))
    with provider, pytest.raises(TransientError) as raised:
        provider.list_calendars()
    assert len(answered) == 2  # the third request never left
    assert raised.value.retry_after is not None and raised.value.retry_after > 50


def _feed(url: str, settings: Settings, limits: ProviderLimits) -> Any:
    secret = encrypt_json({"url": url}, settings.resolved_encryption_key())
    return open_account(Provider.ICS, secret, settings, "UTC", config={"url": url}, limits=limits)


def _pull(feed: Any) -> Any:
    now = utcnow()
    return feed.pull(FEED_CALENDAR_ID, None, now, now + timedelta(days=30), "UTC")


def test_feed_requests_take_their_turn_and_a_429_pauses_the_host(
    shared: SharedStore, limiter: RateLimiter, feed_server: tuple[str, FeedState], tmp_path: Path,
) -> None:
    url, state = feed_server
    state.body = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
    turns: list[str] = []
    limiter.on_grant = lambda plan: turns.append(plan.label)
    settings = _settings(tmp_path, shared.prefix, max_wait_seconds=0, default_pause_seconds=30)
    with _feed(url, settings, ProviderLimits(limiter, settings.rate_limit)) as feed:
        _pull(feed)
        _pull(feed)
        assert len(turns) == len(state.requests) == 2

        state.status = 429
        with pytest.raises(TransientError):
            _pull(feed)
    asked = len(state.requests)
    other = RateLimiter(open_store(shared.kind, shared.url))  # another worker
    try:
        with _feed(url, settings, ProviderLimits(other, settings.rate_limit)) as feed, \
                pytest.raises(TransientError) as raised:
            _pull(feed)
    finally:
        other.close()
    assert len(state.requests) == asked  # the feed's host was not asked again
    assert raised.value.retry_after is not None and raised.value.retry_after > 20


def test_without_its_store_the_limiter_limits_within_the_process(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(RedisStore.from_url("redis://127.0.0.1:1/0"))  # nothing listens there
    plan = RequestPlan((Bucket("calbook:test:down", Rate(60.0, 2)),))
    with caplog.at_level(logging.WARNING, logger="connectors.rate_limits.limiter"):
        for _ in range(2):
            with limiter.acquire(plan, max_wait=0):
                pass
        with pytest.raises(TransientError), limiter.acquire(plan, max_wait=0):
            pass
    assert [r.message for r in caplog.records].count(
        "rate limits: the shared store failed (redis: ConnectionError); limiting within this process for 30s") == 1


def test_waits_are_logged_with_the_connection_and_a_hashed_key(caplog: pytest.LogCaptureFixture,
                                                               tmp_path: Path) -> None:
    limiter = RateLimiter(MemoryStore())
    settings = _settings(tmp_path, "calbook:test:log:", microsoft_burst=1, microsoft_mailbox_requests=20,
                         microsoft_mailbox_period_seconds=2)
    gate = ProviderLimits(limiter, settings.rate_limit).microsoft(
        mailbox="expert@contoso.test", app="app-id", graph_root="https://graph.test/v1.0", connection_id="conn-9")
    with caplog.at_level(logging.INFO, logger="connectors.rate_limits.limiter"):
        for _ in range(2):
            with gate.admit("https://graph.test/v1.0/me/calendars"):
                pass
    waited = [r for r in caplog.records if r.message.startswith("rate limit: waited")]
    assert len(waited) == 1
    assert waited[0].connection_id == "conn-9"  # type: ignore[attr-defined]
    key = waited[0].rate_limit_key  # type: ignore[attr-defined]
    assert key.startswith("calbook:test:log:microsoft:mailbox:") and "contoso" not in key
    with gate.admit("https://login.test/token"):  # not Graph: not counted, not held
        pass


def test_the_settings_name_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_of(Settings(data_dir=tmp_path, broker_url="redis://broker:6379/0")) == (
        "redis", "redis://broker:6379/0")
    assert store_of(Settings(data_dir=tmp_path)) == ("database", f"sqlite:///{tmp_path / 'calbook.sqlite'}")
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_STORE", "off")
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_MAX_WAIT_SECONDS", "2.5")
    off = Settings(data_dir=tmp_path, broker_url="redis://broker:6379/0")
    assert off.rate_limit.max_wait_seconds == 2.5
    assert provider_limits(off).caldav() is UNLIMITED
