"""Fixtures for the worker tests: a real SMTP server, a real webhook receiver, worker processes.

Nothing here is mocked: aiosmtpd receives the e-mails on 127.0.0.1, a stdlib HTTP server
receives the webhooks and checks their signatures, and the process tests start real
``celery worker`` processes against Redis or the embedded SQLAlchemy broker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

import booking_engine.store.worker_tables  # noqa: F401  (registers the worker tables for truncate_all)
from worker import wiring
from worker.notifications.webhooks import verify

ROOT = Path(__file__).resolve().parents[2]
ENCRYPTION_KEY = Fernet.generate_key().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy. The timeout only ends a hung test; no test
    asserts on how long anything took."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- SMTP ------------------------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"

    def snapshot(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.messages)


@pytest.fixture
def smtp() -> Iterator[tuple[str, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", box
    controller.stop()


# --- webhook receiver ------------------------------------------------------------------


@dataclass
class Received:
    event_id: str
    signature_ok: bool
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    url: str = ""
    secret: str = ""
    fail_first: int = 0
    hold: threading.Event | None = None
    hold_after: int = 0
    delay: float = 0.0  # seconds each answer takes: keeps deliveries in flight under load
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def successes(self) -> list[Received]:
        return [r for r in self.snapshot() if r.status == 200]


def _handler_for(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(rx.secret, self.headers.get("X-Calbook-Signature", ""), raw)
            with rx.lock:
                n = len(rx.received)
                status = 500 if n < rx.fail_first else (200 if ok else 400)
                rx.received.append(Received(self.headers.get("X-Calbook-Event-Id", ""), ok, json.loads(raw), status))
                rx.arrived.set()
            if rx.hold is not None and n >= rx.hold_after:
                rx.hold.wait(30)
            if rx.delay:
                time.sleep(rx.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(rx))
    server.daemon_threads = True
    rx.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rx
    if rx.hold is not None:
        rx.hold.set()
    server.shutdown()
    server.server_close()


# --- settings for in-process tests ------------------------------------------------------


FAST_KNOBS = {
    "CALBOOK_WORKER_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "CALBOOK_WORKER_WEBHOOK_INTERVAL_SECONDS": "0.5",
    "CALBOOK_WORKER_OUTBOX_INTERVAL_SECONDS": "0.5",
    "CALBOOK_WORKER_OUTBOX_RETRY_BASE_SECONDS": "0.2",
    "CALBOOK_WORKER_OUTBOX_LEASE_SECONDS": "5",
    "CALBOOK_WORKER_WEBHOOK_LEASE_SECONDS": "5",
    "CALBOOK_WORKER_STARTING_INTERVAL_SECONDS": "3600",
}


#: The webhook receivers of these tests listen on 127.0.0.1, which the URL policy refuses by default.
LOCAL_URLS = {"CALBOOK_ALLOW_PRIVATE_URLS": "true"}


@pytest.fixture(autouse=True)
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts with fresh settings: its own data dir, a known encryption key, no SMTP,
    local webhook receivers allowed."""
    monkeypatch.setenv("CALBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALBOOK_ENCRYPTION_KEY", ENCRYPTION_KEY)
    for key, value in LOCAL_URLS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CALBOOK_SMTP_URL", raising=False)
    for key, value in FAST_KNOBS.items():
        monkeypatch.setenv(key, value)
    wiring.use(None)
    wiring.set_sending_enabled(False)
    yield
    wiring.set_sending_enabled(True)
    wiring.use(None)


@pytest.fixture
def use_smtp(monkeypatch: pytest.MonkeyPatch, smtp: tuple[str, Mailbox]) -> Mailbox:
    monkeypatch.setenv("CALBOOK_SMTP_URL", smtp[0])
    return smtp[1]


# --- worker processes ------------------------------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def kill9(self) -> None:
        """SIGKILL the whole process group: the main process, its pool children and beat."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Cold shutdown: the tests' state is in the database, nothing to finish politely.
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        env: dict[str, str], beat: bool = True, concurrency: int = 2, name: str = "w", lean: bool = True,
        node: str | None = None,
    ) -> WorkerProcess:
        """``lean`` drops gossip, mingle and heartbeat (quicker start); ``lean=False`` starts the
        worker as ``calbook worker`` does in production, with Celery's defaults. ``node`` fixes
        the node name (``<node>@<host>``), as a supervisor restarting the same worker does."""
        full = {**os.environ, **FAST_KNOBS, **LOCAL_URLS, "CALBOOK_ENCRYPTION_KEY": ENCRYPTION_KEY, **env}
        data = Path(full["CALBOOK_DATA_DIR"])
        data.mkdir(parents=True, exist_ok=True)
        log_path = tmp_path / f"{name}-{len(started)}.log"
        argv = [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "--loglevel", "INFO",
                "--concurrency", str(concurrency), "--hostname", f"{node or name + str(len(started))}@%h"]
        if lean:
            argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if beat:
            argv += ["--beat", "--schedule", str(data / f"beat-{len(started)}")]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        wp = WorkerProcess(proc, log_path)
        started.append(wp)
        return wp

    yield start
    for wp in started:
        wp.stop()
