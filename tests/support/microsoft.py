"""Microsoft integration: the API, the worker functions, real ``msal`` and calbook's httpx client
against the loopback Graph + token endpoint fake (``tests.support.fakes.microsoft_graph``).

In-process tests give the app a :class:`RecordingQueue`: it records what the API queued (so
coalescing can be counted) and runs it on demand through the same worker functions the
Celery tasks call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

import worker.tasks  # noqa: F401  (the Celery tasks)
from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox, watch_channels
from config.settings import Settings
from connectors.secrets import decrypt_json
from tests.support.api import auth
from tests.support.fakes.microsoft_graph import FakeGraph
from worker import wiring
from worker.tasks.google import sync_after_notification

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "entra-secret-xyz"
PUBLIC_BASE = "https://calbook.test"
EXPERT = "expert-1"
ACCOUNT = "expert@contoso.test"
WORK = "AAMkWork=="
TEAM = "AAMkTeam=="
ENCRYPTION_KEY = Fernet.generate_key().decode()
JWT_SECRET = "calbook-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
WEBHOOK = "/v1/webhooks/microsoft"




def microsoft_env(fake: FakeGraph, data_dir: Path) -> dict[str, str]:
    assert fake.cert_path is not None
    return {
        "CALBOOK_DATA_DIR": str(data_dir),
        "CALBOOK_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "CALBOOK_JWT_SECRET": JWT_SECRET,
        "CALBOOK_MICROSOFT_CLIENT_ID": CLIENT_ID,
        "CALBOOK_MICROSOFT_CLIENT_SECRET": CLIENT_SECRET,
        "CALBOOK_MICROSOFT_AUTHORITY_HOST": fake.base,
        "CALBOOK_MICROSOFT_TENANT": "common",
        "CALBOOK_MICROSOFT_GRAPH_ROOT": fake.graph_root,
        "CALBOOK_PUBLIC_BASE_URL": PUBLIC_BASE,
        "CALBOOK_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        "CALBOOK_ALLOW_PRIVATE_URLS": "true",
        "SSL_CERT_FILE": str(fake.cert_path),
    }






@dataclass
class RecordingQueue:
    store: Store
    settings: Settings
    queued: list[tuple[str, str]] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    kicks: list[str] = field(default_factory=list)

    def sync_changed(self, connection_id: str) -> None:
        self.queued.append(("sync", connection_id))

    def watch(self, connection_id: str) -> None:
        self.queued.append(("watch", connection_id))

    def sync(self, connection_id: str, countdown: float = 0) -> None:
        self.requested.append(connection_id)

    def drain_outbox(self) -> None:
        self.kicks.append("outbox")

    def deliver_webhooks(self) -> None:
        self.kicks.append("webhooks")

    def syncs(self) -> int:
        return sum(1 for kind, _ in self.queued if kind == "sync")

    def run(self) -> list[tuple[str, str, str]]:
        done = []
        while self.queued:
            kind, connection_id = self.queued.pop(0)
            if kind == "sync":
                status = sync_after_notification(self.store, connection_id, settings=self.settings, queue=self)
            else:
                status = wiring.watch_connection(self.store, connection_id, self.settings)
            done.append((kind, connection_id, status))
        return done






def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def connect(client: TestClient, fake: FakeGraph, account: str = ACCOUNT) -> dict[str, Any]:
    response = client.post("/v1/calendar-connections/microsoft/authorize", headers=auth(EXPERT))
    assert response.status_code == 200, response.text
    url = response.json()["authorizationUrl"]
    code = fake.approve(url, account)
    callback = client.get("/v1/oauth/microsoft/callback", params={"code": code, "state": query_of(url)["state"]})
    assert callback.status_code == 201, callback.text
    return callback.json()  # type: ignore[no-any-return]




def busy(client: TestClient, days: int = 30) -> list[dict[str, str]]:
    start = utcnow().date()
    response = client.get(f"/v1/experts/{EXPERT}/busy", headers=auth("someone"), params={
        "from": f"{start}T00:00:00Z", "to": f"{start + timedelta(days=days)}T00:00:00Z"})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def event(day_offset: int, hour: int, hours: int = 1, **extra: Any) -> dict[str, Any]:
    start = (utcnow() + timedelta(days=day_offset)).replace(hour=hour, minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {"subject": "Dentist", "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"}, **extra}


def subscriptions(store: Store, connection_id: str | None = None, live: bool | None = None) -> list[dict[str, Any]]:
    stmt = select(watch_channels).order_by(watch_channels.c.created_at, watch_channels.c.id)
    if connection_id is not None:
        stmt = stmt.where(watch_channels.c.connection_id == connection_id)
    if live is True:
        stmt = stmt.where(watch_channels.c.stopped_at.is_(None))
    with store.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def outbox_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]


def stored_credentials(store: Store, connection_id: str) -> dict[str, Any]:
    with store.read() as conn:
        raw = conn.execute(select(calendar_connections.c.credentials)
                           .where(calendar_connections.c.id == connection_id)).scalar_one()
    return decrypt_json(raw, ENCRYPTION_KEY)


def connection_row(store: Store, connection_id: str) -> dict[str, Any]:
    with store.read() as conn:
        return dict(conn.execute(select(calendar_connections)
                                 .where(calendar_connections.c.id == connection_id)).mappings().one())
