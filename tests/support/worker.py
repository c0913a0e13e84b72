"""Worker test helpers: the SMTP mailbox, the webhook receiver, worker processes, waiting."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

import booking_engine.store.worker_tables  # noqa: F401  (registers the worker tables for truncate_all)
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


FAST_KNOBS = {
    "CALBOOK_WORKER_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "CALBOOK_WORKER_WEBHOOK_INTERVAL_SECONDS": "0.5",
    "CALBOOK_WORKER_OUTBOX_INTERVAL_SECONDS": "0.5",
    "CALBOOK_WORKER_OUTBOX_RETRY_BASE_SECONDS": "0.2",
    "CALBOOK_WORKER_OUTBOX_LEASE_SECONDS": "5",
    "CALBOOK_WORKER_WEBHOOK_LEASE_SECONDS": "5",
    "CALBOOK_WORKER_STARTING_INTERVAL_SECONDS": "3600",
    # The sync dispatcher's tick and a failed connection's first backoff, shortened likewise.
    "CALBOOK_WORKER_SYNC_DISPATCH_INTERVAL_SECONDS": "0.5",
    "CALBOOK_WORKER_SYNC_RETRY_BASE_SECONDS": "0.2",
}


#: The webhook receivers of these tests listen on 127.0.0.1, which the URL policy refuses by default.
LOCAL_URLS = {"CALBOOK_ALLOW_PRIVATE_URLS": "true"}


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
