"""Fixtures for the sync glue: the real Radicale of ``tests.caldav``, an expert, a connection.

The glue is the same for every server, so these tests run on Radicale alone (the server-by-server
behaviour is ``tests.caldav``'s), in its default account (``USERNAME``/``PASSWORD``).

The services read the real clock, so calendar events are placed relative to now (tomorrow
and later, inside the sync horizon). Connections point at Radicale through the counting,
fault-injecting proxy, so a test can count requests or make the server fail.
"""


from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking_engine.clock import utcnow
from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from tests.support.caldav import Direct
from tests.support.caldav_servers import Account, CalDAVServer, FaultProxy
from tests.support.factories import publish
from tests.support.sync import (
    EXPERT,
)
from tests.support.worker import ENCRYPTION_KEY
from worker import wiring


@pytest.fixture(autouse=True)
def sync_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Own data dir, a known encryption key (shared with worker processes), local servers allowed, no kicks."""
    monkeypatch.setenv("CALBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALBOOK_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "true")  # Radicale and the fake servers are on 127.0.0.1
    monkeypatch.delenv("CALBOOK_SMTP_URL", raising=False)
    wiring.use(None)
    wiring.set_sending_enabled(False)
    yield
    wiring.set_sending_enabled(True)
    wiring.use(None)


@pytest.fixture(scope="session")
def caldav_server(radicale: CalDAVServer) -> CalDAVServer:  # noqa: F811
    return radicale


@pytest.fixture(scope="session")
def _proxy_server(caldav_server: CalDAVServer) -> Iterator[FaultProxy]:
    """This directory's own proxy, in front of Radicale: the CalDAV suite's session proxy stands in
    front of whichever server it tested last, and a session fixture is not rebuilt for another."""
    proxy = FaultProxy(caldav_server.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def account(caldav_server: CalDAVServer) -> Account:
    assert caldav_server.default_account is not None
    return caldav_server.default_account


@pytest.fixture
def expert(store: Store) -> AvailabilitySettings:
    """Published 09:00-17:00 UTC every day, 15 min buffer, no auto-confirm."""
    return publish(store, EXPERT, now=utcnow())


@pytest.fixture
def calendar_path(direct: Direct) -> str:  # noqa: F811
    return direct.make_calendar(f"cal-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def calendar_url(proxy: FaultProxy, calendar_path: str) -> str:  # noqa: F811
    return proxy.url.rstrip("/") + calendar_path
