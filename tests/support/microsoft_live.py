"""A live set-up shared by the real-worker test and ``bench/microsoft_webhook_latency.py``.

The fake Graph + token endpoint runs in this process (HTTPS on 127.0.0.1); the API runs as a
real uvicorn server on 127.0.0.1 (so the fake's subscription validation handshake and its
notifications reach calbook over HTTP, as Graph's would); a real ``celery worker``
subprocess syncs and subscribes. The expert connects through the API as in production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.api import auth
from tests.support.factories import publish
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.google_live import _stop, wait_until
from tests.support.microsoft import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    EXPERT,
    WEBHOOK,
    WORK,
    microsoft_env,
    query_of,
    subscriptions,
)

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["Live", "live_microsoft", "wait_until"]


@dataclass
class Live:
    store: Store
    api: httpx.Client
    fake: FakeGraph
    connection_id: str
    worker: subprocess.Popen[bytes]
    log_path: Path
    base: str

    def busy(self, days: int = 40) -> list[dict[str, str]]:
        start = utcnow().date()
        response = self.api.get(f"/v1/experts/{EXPERT}/busy", headers=auth("someone"), params={
            "from": f"{start}T00:00:00Z", "to": f"{start + timedelta(days=days)}T00:00:00Z"})
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    def notify(self, calendar_id: str = WORK) -> int:
        return int(self.fake.notify(self.base + WEBHOOK, self.fake.change_items(calendar_id)).status_code)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_microsoft(db_url: str, broker_url: str, data_dir: Path, concurrency: int = 2,
                   fake: FakeGraph | None = None) -> Iterator[Live]:
    data_dir.mkdir(parents=True, exist_ok=True)
    if fake is None:
        fake = FakeGraph(CLIENT_ID, CLIENT_SECRET)
        fake.add_calendar(WORK, "Calendar", can_edit=True, default=True)
    fake.start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**microsoft_env(fake, data_dir), "CALBOOK_DATABASE_URL": db_url, "CALBOOK_BROKER_URL": broker_url,
           "CALBOOK_PUBLIC_BASE_URL": base}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    store = Store.from_url(db_url)
    proc: subprocess.Popen[bytes] | None = None
    server: uvicorn.Server | None = None
    log_path = data_dir / "worker.log"
    try:
        publish(store, EXPERT, now=utcnow())
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "--loglevel", "INFO",
                 "--concurrency", str(concurrency), "--hostname", f"microsoft{os.getpid()}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        app = create_app(store, Settings())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on"))
        threading.Thread(target=server.run, daemon=True).start()
        wait_until(lambda: server is not None and server.started, what="the API server")
        with httpx.Client(base_url=base, timeout=30) as api:
            started = api.post("/v1/calendar-connections/microsoft/authorize", headers=auth(EXPERT))
            assert started.status_code == 200, started.text
            url = started.json()["authorizationUrl"]
            code = fake.approve(url, ACCOUNT)
            done = api.get("/v1/oauth/microsoft/callback", params={"code": code, "state": query_of(url)["state"]})
            assert done.status_code == 201, done.text
            connection_id = done.json()["id"]
            live = Live(store, api, fake, connection_id, proc, log_path, base)
            # The worker runs the first sync and subscribes (Graph's handshake reaches the API) on its own.
            try:
                wait_until(lambda: subscriptions(store, connection_id, live=True), what="the first subscription")
            except AssertionError:
                raise AssertionError(live.log_text()[-4000:]) from None
            yield live
    finally:
        if server is not None:
            server.should_exit = True
        if proc is not None:
            _stop(proc)
        store.dispose()
        fake.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def one_hour(days: int, hour: int) -> dict[str, Any]:
    start = (utcnow() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {"subject": "Dentist", "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"}}
