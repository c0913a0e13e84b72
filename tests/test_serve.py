"""``calbook serve`` (the embedded default of ``make run``): it answers, and its worker dies with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees from /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_serve_answers_and_its_worker_stops_with_it(tmp_path: Path, how: signal.Signals) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBOOK_")}
    env["CALBOOK_DATA_DIR"] = str(tmp_path / "var")
    serve = subprocess.Popen(
        [sys.executable, "-m", "config.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent,
    )
    workers: list[int] = []
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait(ready, 90), "calbook serve did not become ready"
        assert (tmp_path / "var" / "calbook.sqlite").exists()  # migrated on the embedded default
        workers = _children(serve.pid)
        assert workers, "serve started no worker process"
        serve.send_signal(how)
        serve.wait(timeout=60)
        if how == signal.SIGTERM:
            # docs/operations.md#supervising-the-processes
            assert serve.returncode == 0, "a requested shutdown is a clean exit"
        assert _wait(lambda: not any(_alive(pid) for pid in workers), 60), "the worker outlived calbook serve"
    finally:
        if serve.poll() is None:
            serve.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_on_postgresql_creates_the_data_directory_it_still_needs(tmp_path: Path, pg_url: str) -> None:
    """The database is elsewhere and both secrets are given, yet the embedded broker and beat's
    schedule still live in the data directory: serve creates it rather than failing to start."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBOOK_")}
    env.update({
        "CALBOOK_DATA_DIR": str(tmp_path / "not-yet" / "var"),
        "CALBOOK_DATABASE_URL": pg_url,
        "CALBOOK_JWT_SECRET": "serve-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        "CALBOOK_ENCRYPTION_KEY": "p1dQ3x0C7b8m1r9uJ2sLkWqYzT4vN6aH5eFgRcXoBiM=",
    })
    serve = subprocess.Popen(
        [sys.executable, "-m", "config.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return serve.poll() is not None  # exited: stop waiting, the assertion below says so

        assert _wait(ready, 90) and serve.poll() is None, "calbook serve did not start with a missing data directory"
        assert (tmp_path / "not-yet" / "var" / "broker.sqlite").exists()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(timeout=30)
        for pid in _children(serve.pid):
            os.kill(pid, signal.SIGKILL)
