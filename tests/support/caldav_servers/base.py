"""What every real CalDAV server of the suite offers the tests: start, stop, accounts, paths.

Each server runs from its Debian package (or, for Radicale, the Python package) as a child
process on a free 127.0.0.1 port, with all its state under a temporary directory (DAViCal:
a throwaway PostgreSQL database of its own), and is started once per test session. Tests
get a fresh account each (``new_account``), so that servers which keep a UID unique across
an account's calendars (Cyrus) see no collisions between tests.

A server that cannot start (package missing, not root for Cyrus) raises ``ServerUnavailable``:
the fixture skips on a developer machine and fails under ``CI=true``.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

USERNAME = "alice"
PASSWORD = "s3cret-pw"


class ServerUnavailable(RuntimeError):
    """The server cannot run here (a package is missing, or the environment does not allow it)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Features:
    """What a server does, as calbook should find out by itself (the tests check both agree).

    ``sync_collection``: RFC 6578 sync-collection REPORT. ``unique_uid``: a UID may exist only
    once across all calendars of an account (a second copy is refused with a precondition).
    ``honours_bad_tokens``: an unknown sync token is refused (403/409) rather than answered.
    """

    sync_collection: bool = True
    unique_uid: bool = False
    honours_bad_tokens: bool = True


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    home: str  # the calendar home, a path ending in "/"
    principal: str  # the principal URL's path


class CalDAVServer:
    """Base of the server fixtures; subclasses fill in ``_launch``, ``_create_user`` and the paths."""

    name = "caldav"
    features = Features()
    #: The path a user would type after the host to connect (discovery starts there).
    root = "/"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"
        self.default_account: Account | None = None

    # -- to override
    def _launch(self) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def _create_user(self, username: str, password: str) -> Account:
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Remove what lives outside the work dir (DAViCal's database)."""

    # -- lifecycle
    def start(self) -> None:
        self.process = self._launch()
        self._wait_until_answering()
        self.default_account = self._create_user(USERNAME, PASSWORD)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Each server runs in its own session: the whole group goes (php -S workers, Cyrus services).
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._cleanup()

    def new_account(self) -> Account:
        return self._create_user(f"u{uuid.uuid4().hex[:12]}", PASSWORD)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _spawn(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
               ) -> subprocess.Popen[bytes]:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )

    def _wait_until_answering(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("OPTIONS", self.root)
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer in {timeout:.0f} s:\n{self.log_tail()}")
