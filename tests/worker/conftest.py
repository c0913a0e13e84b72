"""Fixtures for the worker tests: a real SMTP server, a real webhook receiver, worker processes.

Nothing here is mocked: aiosmtpd receives the e-mails on 127.0.0.1, a stdlib HTTP server
receives the webhooks and checks their signatures, and the process tests start real
``celery worker`` processes against Redis or the embedded SQLAlchemy broker.
"""


from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

import booking_engine.store.worker_tables  # noqa: F401  (registers the worker tables for truncate_all)
from tests.support.worker import (
    ENCRYPTION_KEY,
    FAST_KNOBS,
    LOCAL_URLS,
    Mailbox,
    Receiver,
    _handler_for,
    free_port,
)
from worker import wiring


@pytest.fixture
def smtp() -> Iterator[tuple[str, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", box
    controller.stop()


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


