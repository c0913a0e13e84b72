"""A live set-up shared by the real-worker test and ``bench/google_webhook_latency.py``.

The fake Calendar API and the fake token endpoint run in this process; a real ``celery
worker`` subprocess reaches both over 127.0.0.1, and the API runs in-process (TestClient)
with the real broker queue. The expert connects through the API exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.api import auth
from tests.support.factories import publish
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import ACCOUNT, EXPERT, channels, connect, fake_channel, google_env
from tests.support.google_oauth import FakeGoogleOAuth

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    """Poll until truthy; the timeout only ends a hung run, nothing asserts on durations."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@dataclass
class Live:
    store: Store
    client: TestClient
    fake: FakeGoogleCalendar
    oauth: FakeGoogleOAuth
    connection_id: str
    worker: subprocess.Popen[bytes]
    log_path: Path

    def channel(self) -> dict[str, Any]:
        (row,) = channels(self.store, self.connection_id, live=True)
        return fake_channel(self.fake, row["id"])

    def busy(self, days: int = 40) -> list[dict[str, str]]:
        start = utcnow().date()
        response = self.client.get(
            f"/v1/experts/{EXPERT}/busy",
            params={"from": f"{start}T00:00:00Z", "to": f"{start + timedelta(days=days)}T00:00:00Z"},
            headers=auth("someone"),
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    def notify(self, number: int = 1) -> int:
        channel = self.channel()
        response = self.client.post("/v1/webhooks/google", headers={
            "X-Goog-Channel-ID": channel["id"], "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-State": "exists", "X-Goog-Channel-Token": channel["token"],
            "X-Goog-Message-Number": str(number),
        })
        return response.status_code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextmanager
def live_google(db_url: str, broker_url: str, data_dir: Path, concurrency: int = 2) -> Iterator[Live]:
    """Fakes, a worker process, an API client, and a connected expert; all torn down after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fake = FakeGoogleCalendar()
    fake.add_calendar(ACCOUNT, "Work", "UTC", "owner", primary=True)
    fake.start()
    oauth = FakeGoogleOAuth(fake, "client-123.apps.googleusercontent.com", "client-secret-xyz")
    oauth.start()
    env = {**google_env(fake, oauth, data_dir), "CALBOOK_DATABASE_URL": db_url, "CALBOOK_BROKER_URL": broker_url}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    store = Store.from_url(db_url)
    proc: subprocess.Popen[bytes] | None = None
    log_path = data_dir / "worker.log"
    try:
        publish(store, EXPERT, now=utcnow())
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "--loglevel", "INFO",
                 "--concurrency", str(concurrency), "--hostname", f"google{os.getpid()}@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        app = create_app(store, Settings())
        with TestClient(app) as client:
            connection = connect(client, oauth)
            live = Live(store, client, fake, oauth, connection["id"], proc, log_path)
            # The worker runs the first sync and opens the channel on its own.
            wait_until(lambda: channels(store, connection["id"], live=True), what="the first watch")
            yield live
    finally:
        if proc is not None:
            _stop(proc)
        store.dispose()
        oauth.stop()
        fake.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
