"""Start calbook's real processes as an operator would, and read what they print.

Each process is the installed ``calbook`` command (or ``python -m config.cli``), in a session
of its own, with its stdout and stderr in a file the tests read. Nothing is mocked: the tests
talk to them over HTTP and read their logs and exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.support.api import EXPERT, SECRET, USER, auth, booking_body, day_ahead
from tests.support.factories import settings_body
from tests.support.worker import wait_until

ROOT = Path(__file__).resolve().parents[2]
_INSTALLED = Path(sys.executable).with_name("calbook")
CALBOOK = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "config.cli"]
ENCRYPTION_KEY = Fernet.generate_key().decode()

#: Periodic ticks many times faster than in production: a few seconds hold more idle ticks
#: than a real minute does (30 outbox + 12 webhook ticks at the defaults).
FAST_TICKS = {
    "CALBOOK_WORKER_OUTBOX_INTERVAL_SECONDS": "0.1",
    "CALBOOK_WORKER_WEBHOOK_INTERVAL_SECONDS": "0.25",
    "CALBOOK_WORKER_STARTING_INTERVAL_SECONDS": "1",
}


def clean_env(**values: str) -> dict[str, str]:
    """The test run's environment without any CALBOOK_ setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBOOK_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(values)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def lines(self) -> list[str]:
        return [line for line in self.text().splitlines() if line.strip()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Ask it to stop as a supervisor would (SIGTERM to the process); its exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout}s:\n{self.text()[-3000:]}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)


@dataclass
class Processes:
    """The processes a test started; whatever is still running at the end is killed."""

    directory: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log_path = self.directory / f"{name}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen([*CALBOOK, *args], env=env, cwd=cwd or self.directory, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log_path)
        self.started.append(proc)
        return proc

    def run(self, args: list[str], env: dict[str, str], cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CALBOOK, *args], env=env, cwd=cwd or self.directory, capture_output=True,
                              text=True, timeout=timeout)

    def kill_all(self) -> None:
        for proc in self.started:
            proc.kill()


@contextmanager
def processes(directory: Path) -> Iterator[Processes]:
    group = Processes(directory)
    try:
        yield group
    finally:
        group.kill_all()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_up(base: str, proc: Proc, timeout: float = 90) -> None:
    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.text()[-3000:]}")
        return answers(f"{base}/healthz")

    wait_until(up, timeout, f"{proc.name} to answer")


def publish_and_book(base: str, hour: int = 10, days: int = 1) -> dict[str, Any]:
    """Over HTTP: the expert publishes a schedule (once), the user books a slot."""
    with httpx.Client(base_url=base, timeout=10) as http:
        current = http.get(f"/v1/experts/{EXPERT}/availability", headers=auth(EXPERT))  # always known to itself
        assert current.status_code == 200, current.text
        version = current.json()["version"]
        if version == 0:
            put = http.put(f"/v1/experts/{EXPERT}/availability", json=settings_body(),
                           headers={**auth(EXPERT), "If-Match": f'"{version}"'})
            assert put.status_code == 200, put.text
        created = http.post("/v1/bookings", json=booking_body(day_ahead(days), hour), headers=auth(USER))
        assert created.status_code == 201, created.text
        return created.json()  # type: ignore[no-any-return]


def common_env(data_dir: Path, **values: str) -> dict[str, str]:
    """A data directory, the tests' secrets and fast ticks; ``values`` add to or override them."""
    return clean_env(**{"CALBOOK_DATA_DIR": str(data_dir), "CALBOOK_JWT_SECRET": SECRET,
                        "CALBOOK_ENCRYPTION_KEY": ENCRYPTION_KEY, **FAST_TICKS, **values})


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every log line parsed as JSON (fails on the first line that is not)."""
    parsed = []
    for line in text.splitlines():
        if line.strip():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"not a JSON log line: {line!r}") from exc
    return parsed
