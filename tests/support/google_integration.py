"""Google end-to-end test helpers: the environment, connecting, channels, the recording task queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import worker.tasks  # noqa: F401  (registers the tasks and outbox handlers)
from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox, watch_channels
from config.settings import Settings
from config.task_sender import CeleryTaskQueue
from connectors.secrets import decrypt_json, encrypt_json
from tests.support.api import auth
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_oauth import FakeGoogleOAuth
from worker.calendar import google as google_worker
from worker.tasks.google import sync_after_notification

CLIENT_ID = "client-123.apps.googleusercontent.com"


CLIENT_SECRET = "client-secret-xyz"


AUTH_URI = "https://accounts.test/o/oauth2/auth"


PUBLIC_BASE = "https://calbook.test"


EXPERT = "expert-1"


ACCOUNT = "expert@example.com"


SECONDARY = "team@group.calendar.test"


ENCRYPTION_KEY = Fernet.generate_key().decode()


JWT_SECRET = "calbook-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def google_env(fake: FakeGoogleCalendar, oauth: FakeGoogleOAuth, data_dir: Path) -> dict[str, str]:
    """The environment of every calbook process in these tests (API, in-process worker, subprocess)."""
    assert fake._server is not None and oauth._server is not None
    return {
        "CALBOOK_DATA_DIR": str(data_dir),
        "CALBOOK_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "CALBOOK_JWT_SECRET": JWT_SECRET,
        "CALBOOK_GOOGLE_CLIENT_ID": CLIENT_ID,
        "CALBOOK_GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "CALBOOK_GOOGLE_API_ROOT": f"http://127.0.0.1:{fake._server.server_address[1]}/",
        "CALBOOK_GOOGLE_TOKEN_URI": f"http://127.0.0.1:{oauth._server.server_address[1]}/token",
        "CALBOOK_GOOGLE_AUTH_URI": AUTH_URI,
        "CALBOOK_PUBLIC_BASE_URL": PUBLIC_BASE,
        "CALBOOK_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        # Every server these tests call listens on 127.0.0.1, which the URL policy refuses by default.
        "CALBOOK_ALLOW_PRIVATE_URLS": "true",
        # oauthlib refuses a plain-http token endpoint; the fake one is on 127.0.0.1.
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }


@dataclass
class RecordingQueue:
    """Stands in for the broker: records what was queued; :meth:`run` works it off like a worker."""

    store: Store
    queued: list[tuple[str, str]] = field(default_factory=list)
    results: list[tuple[str, str, str]] = field(default_factory=list)

    requested: list[str] = field(default_factory=list)
    kicks: list[str] = field(default_factory=list)

    def sync_changed(self, connection_id: str) -> None:
        self.queued.append(("sync", connection_id))

    def watch(self, connection_id: str) -> None:
        self.queued.append(("watch", connection_id))

    def sync(self, connection_id: str, countdown: float = 0) -> None:
        """A sync the expert asked for: recorded, not run (no worker consumes it in these tests)."""
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
                settings = Settings()
                idle = CeleryTaskQueue(settings.resolved_broker_url(), enabled=False)
                status = sync_after_notification(self.store, connection_id, settings=settings, queue=idle)
            else:
                status = google_worker.ensure_watches(self.store, connection_id, settings=Settings()).status
            done.append((kind, connection_id, status))
        self.results.extend(done)
        return done


def connect(client: TestClient, oauth: FakeGoogleOAuth, email: str = ACCOUNT) -> dict[str, Any]:
    """The whole connect flow through the API: authorize, consent (the fake), callback."""
    response = client.post("/v1/calendar-connections/google/authorize", headers=auth(EXPERT))
    assert response.status_code == 200, response.text
    url = response.json()["authorizationUrl"]
    code = oauth.approve(url, email)
    state = _query(url)["state"]
    callback = client.get("/v1/oauth/google/callback", params={"code": code, "state": state})
    assert callback.status_code == 201, callback.text
    return callback.json()  # type: ignore[no-any-return]


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def channels(store: Store, connection_id: str | None = None, live: bool | None = None) -> list[dict[str, Any]]:
    stmt = select(watch_channels).order_by(watch_channels.c.created_at, watch_channels.c.id)
    if connection_id is not None:
        stmt = stmt.where(watch_channels.c.connection_id == connection_id)
    if live is True:
        stmt = stmt.where(watch_channels.c.stopped_at.is_(None))
    elif live is False:
        stmt = stmt.where(watch_channels.c.stopped_at.is_not(None))
    with store.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def outbox_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]


def stored_credentials(store: Store, connection_id: str) -> dict[str, Any]:
    with store.read() as conn:
        raw = conn.execute(
            select(calendar_connections.c.credentials).where(calendar_connections.c.id == connection_id)
        ).scalar_one()
    return decrypt_json(raw, ENCRYPTION_KEY)


def expire_access_token(store: Store, connection_id: str) -> None:
    """Make the stored access token look expired, so the next call refreshes first."""
    credentials = stored_credentials(store, connection_id)
    credentials["expiry"] = "2000-01-01T00:00:00Z"
    with store.write() as conn:
        conn.execute(
            update(calendar_connections)
            .where(calendar_connections.c.id == connection_id)
            .values(credentials=encrypt_json(credentials, ENCRYPTION_KEY))
        )


def notify(
    client: TestClient, channel: dict[str, Any], token: str | None, state: str = "exists", number: int = 1
) -> Any:
    headers = {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-URI": channel["resourceUri"],
    }
    if token is not None:
        headers["X-Goog-Channel-Token"] = token
    return client.post("/v1/webhooks/google", headers=headers)


def fake_channel(fake: FakeGoogleCalendar, channel_id: str) -> dict[str, Any]:
    """The channel as Google knows it, with its token (calbook keeps only the hash)."""
    with fake.lock:
        return dict(fake.channels[channel_id])


def busy_times(client: TestClient) -> list[dict[str, str]]:
    start = utcnow().date()
    response = client.get(
        f"/v1/experts/{EXPERT}/busy",
        params={"from": f"{start}T00:00:00Z", "to": f"{start + timedelta(days=7)}T00:00:00Z"},
        headers=auth("someone"),
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def google_event(day_offset: int, hour: int) -> dict[str, Any]:
    start = (utcnow() + timedelta(days=day_offset)).replace(hour=hour, minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=1)
    return {"summary": "Dentist", "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": end.isoformat().replace("+00:00", "Z")}}
