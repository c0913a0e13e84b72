"""One user cannot starve the API through calendar connects (docs/security.md#outbound-requests).

A real ``calbook api`` and a real socket server that accepts connections and never answers
(a calendar server that hangs). One token fires many connects: the first two hold their
slots, the rest get 429 ``too_many_requests`` with ``Retry-After`` at once. Many users
connecting at once (more than the request thread pool holds) cannot make the health
endpoints wait either. The waits here are bounds that end a hung test, not measurements.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from booking_engine.store.migrate import upgrade
from tests.support.api import SECRET, auth
from tests.support.worker import ROOT, free_port

pytestmark = pytest.mark.slow


class BlackHole:
    """Accepts TCP connections and never sends a byte, until closed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted.append(conn)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        with self.lock:
            for conn in self.accepted:
                conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    db_url = f"sqlite:///{tmp_path / 'calbook.sqlite'}"
    upgrade(db_url)
    env = {**os.environ, "CALBOOK_DATABASE_URL": db_url, "CALBOOK_DATA_DIR": str(tmp_path / "data"),
           "CALBOOK_JWT_SECRET": SECRET, "CALBOOK_ALLOW_PRIVATE_URLS": "true", "CALBOOK_LOG_LEVEL": "WARNING"}
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "config.cli", "api", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail((tmp_path / "api.log").read_text())
        time.sleep(0.1)
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _connect(base: str, user: str, feed: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=60) as client:
        return client.post("/v1/calendar-connections/ics", json={"url": feed}, headers=auth(user))


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_one_token_gets_two_connects_and_429_beyond(api: str, black_hole: BlackHole) -> None:
    feed = f"http://127.0.0.1:{black_hole.port}/hangs.ics"
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_connect, api, "greedy", feed) for _ in range(8)]
        _wait(lambda: sum(f.done() for f in futures) == 6, 30, "the six connects over the cap to be refused")
        refused = [f for f in futures if f.done()]
        for response in (f.result() for f in refused):
            assert response.status_code == 429, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "too_many_requests"
            assert int(response.headers["Retry-After"]) > 0
        _wait(lambda: black_hole.count() == 2, 30, "the two connects within the cap to reach the server")
        # The API answers meanwhile: health at once, and another user may connect.
        assert httpx.get(f"{api}/healthz", timeout=5).json() == {"status": "ok"}
        other = pool.submit(_connect, api, "someone-else", feed)
        _wait(lambda: black_hole.count() == 3, 30, "another user's connect")
        black_hole.close()  # the calendar server goes away: the hanging connects end (502)
        finished = [f.result(timeout=30) for f in futures if f not in refused] + [other.result(timeout=30)]
    assert sorted(r.status_code for r in finished) == [502, 502, 502], [r.text for r in finished]
    # The slots were given back: the same token may connect again.
    assert _connect(api, "greedy", feed).status_code == 502


def test_health_answers_while_every_request_thread_is_busy(api: str, black_hole: BlackHole) -> None:
    """60 users connect at once to a server that hangs: more than the 40 request threads."""
    feed = f"http://127.0.0.1:{black_hole.port}/hangs.ics"
    with ThreadPoolExecutor(64) as pool:
        futures = [pool.submit(_connect, api, f"user-{i}", feed) for i in range(60)]
        _wait(lambda: black_hole.count() >= 40, 60, "the request threads to be taken")
        assert httpx.get(f"{api}/healthz", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"{api}/readyz", timeout=10)  # bounded checks on their own threads
        assert ready.status_code == 503 and "worker" in ready.json()["detail"]  # no worker runs in this test
        assert "database" not in ready.json()["detail"]
        black_hole.close()
        statuses = [f.result(timeout=60).status_code for f in futures]
    assert set(statuses) <= {502}, statuses
