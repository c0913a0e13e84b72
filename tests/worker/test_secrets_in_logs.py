"""No feed token, OAuth code or webhook credential in any table or log line (docs/security.md#logs).

End to end with real processes: ``calbook api`` (its uvicorn access log included) verifies an
ICS feed whose URL carries a private token in its path and in its query, a real worker syncs
it, and an OAuth callback arrives with a ``code``. Then every table and both processes' logs
are searched for the secrets. The feed server checks that the real URL was used throughout.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.migrate import upgrade
from booking_engine.store.schema import metadata
from booking_engine.store.tables import busy_blocks
from tests.support.api import EXPERT, SECRET, auth
from tests.support.factories import publish
from tests.support.worker import ROOT, WorkerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

PATH_TOKEN = "private-" + secrets.token_hex(16)
QUERY_TOKEN = "feedtok" + secrets.token_urlsafe(20)
OAUTH_CODE = "4/0A" + secrets.token_urlsafe(24)


def _feed_body() -> bytes:
    start = (utcnow() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:dentist@example.org\r\n"
        f"DTSTAMP:{start.strftime(stamp)}\r\nDTSTART:{start.strftime(stamp)}\r\n"
        f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def feed() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    body = _feed_body()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            seen.append(self.path)
            ok = PATH_TOKEN in self.path and QUERY_TOKEN in self.path
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cal/{PATH_TOKEN}/basic.ics?token={QUERY_TOKEN}", seen
    server.shutdown()
    server.server_close()


def _start_api(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "config.cli", "api", "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "1"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"calbook api did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


def _every_cell(store: Store) -> list[str]:
    cells: list[str] = []
    with store.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                cells.extend(str(value) for value in row)
    return cells


def test_no_secret_in_any_table_or_log_line(
    tmp_path: Path, feed: tuple[str, list[str]], start_worker: Callable[..., WorkerProcess],
) -> None:
    feed_url, seen = feed
    db_url = f"sqlite:///{tmp_path / 'calbook.sqlite'}"
    upgrade(db_url)
    store = Store.from_url(db_url)
    publish(store, EXPERT, now=utcnow())
    env = {**os.environ, "CALBOOK_DATABASE_URL": db_url, "CALBOOK_DATA_DIR": str(tmp_path / "data"),
           "CALBOOK_JWT_SECRET": SECRET, "CALBOOK_ALLOW_PRIVATE_URLS": "true", "CALBOOK_LOG_LEVEL": "DEBUG",
           "CALBOOK_GOOGLE_CLIENT_ID": "client-id", "CALBOOK_GOOGLE_CLIENT_SECRET": "client-secret"}
    api_log = tmp_path / "api.log"
    api, base = _start_api(env, api_log)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            created = client.post("/v1/calendar-connections/ics", json={"url": feed_url}, headers=auth(EXPERT))
            assert created.status_code == 201, created.text
            connection_id = created.json()["id"]
            callback = client.get("/v1/oauth/google/callback", params={"code": OAUTH_CODE, "state": "st" + OAUTH_CODE})
            assert callback.status_code < 500
            refused = client.post("/v1/webhook-subscriptions", headers=auth(EXPERT),
                                  json={"url": f"https://hook:{QUERY_TOKEN}@receiver.example/hook"})
            assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
        worker = start_worker({k: v for k, v in env.items() if k.startswith("CALBOOK_")}, name="sync")
        with store.read() as conn:
            before = len(conn.execute(select(busy_blocks.c.id)).all())
        wait_until(lambda: _blocks(store, connection_id) > 0, 90, "the worker's sync of the feed")
        assert before == 0
    finally:
        api.terminate()
        api.wait(10)
    assert len(seen) >= 2 and all(PATH_TOKEN in path and QUERY_TOKEN in path for path in seen)
    logs = {"api": api_log.read_text(errors="replace"), "worker": worker.log_text()}
    assert "/v1/oauth/google/callback" in logs["api"]  # the access log is there, without its query
    assert "ics" in logs["worker"] and "HTTP Request" not in logs["worker"]
    for secret in (PATH_TOKEN, QUERY_TOKEN, OAUTH_CODE):
        for name, text in logs.items():
            assert secret not in text, (name, [line for line in text.splitlines() if secret in line][:3])
        assert not [cell for cell in _every_cell(store) if secret in cell]
    store.dispose()


def _blocks(store: Store, connection_id: str) -> int:
    with store.read() as conn:
        return len(conn.execute(select(busy_blocks.c.id).where(busy_blocks.c.connection_id == connection_id)).all())
