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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.model import AvailabilitySettings
from booking_engine.services import connections
from booking_engine.store.db import Store
from booking_engine.store.tables import busy_blocks, outbox
from config.settings import Settings
from connectors.secrets import encrypt_json
from tests.caldav.conftest import (  # noqa: F401 - fixtures
    Direct,
    _proxy_server,
    caldav_servers,
    direct,
    proxy,
    radicale,
    vevent,
)
from tests.caldav.servers import PASSWORD, USERNAME, Account, CalDAVServer, FaultProxy
from tests.factories import publish
from tests.worker.conftest import ENCRYPTION_KEY
from worker import wiring

EXPERT = "expert-1"
USER = "user-1"


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


@pytest.fixture
def account(caldav_server: CalDAVServer) -> Account:
    assert caldav_server.default_account is not None
    return caldav_server.default_account


@pytest.fixture
def expert(store: Store) -> AvailabilitySettings:
    """Published 09:00-17:00 UTC every day, 15 min buffer, no auto-confirm."""
    return publish(store, EXPERT, now=utcnow())


def day(offset: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    base = utcnow().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=offset, hours=hour, minutes=minute)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_text(uid: str, start: datetime, end: datetime, extra: str = "") -> str:
    return vevent(uid, stamp(start), stamp(end), extra)


@pytest.fixture
def calendar_path(direct: Direct) -> str:  # noqa: F811
    return direct.make_calendar(f"cal-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def calendar_url(proxy: FaultProxy, calendar_path: str) -> str:  # noqa: F811
    return proxy.url.rstrip("/") + calendar_path


def connect(store: Store, calendar_url: str, server_url: str | None = None, expert_id: str = EXPERT) -> str:
    """A CalDAV connection as the API stores it: credentials encrypted, one busy calendar."""
    created = connections.create_connection(
        store, expert_id, expert_id, "caldav", account=USERNAME,
        credentials=encrypt_json({"username": USERNAME, "password": PASSWORD},
                                 Settings().resolved_encryption_key()),
        busy_calendars=[calendar_url], destination_calendar=calendar_url,
        extra_config={"url": server_url or calendar_url},
    )
    return created.id


def blocks(store: Store, connection_id: str | None = None) -> list[tuple[str, datetime, datetime]]:
    with store.read() as conn:
        stmt = select(busy_blocks.c.external_id, busy_blocks.c.start_time, busy_blocks.c.end_time)
        if connection_id:
            stmt = stmt.where(busy_blocks.c.connection_id == connection_id)
        rows = conn.execute(stmt.order_by(busy_blocks.c.start_time)).all()
    return [(r[0], r[1].astimezone(UTC), r[2].astimezone(UTC)) for r in rows]


def spans(store: Store, connection_id: str | None = None) -> list[tuple[datetime, datetime]]:
    return [(s, e) for _, s, e in blocks(store, connection_id)]


def outbox_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]
