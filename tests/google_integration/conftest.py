"""Google integration: the API, the worker functions and the real Google client libraries
against the fake Calendar API and the fake token endpoint, both served on 127.0.0.1.

In-process tests give the app a :class:`RecordingQueue` instead of the broker: it records
what the API queued (so coalescing can be counted) and runs it on demand, as a worker would,
through the same worker functions the Celery tasks call.
"""


from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import worker.tasks  # noqa: F401  (registers the tasks and outbox handlers)
from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.google import backoff as backoff_module
from tests.support.factories import publish
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    EXPERT,
    SECONDARY,
    RecordingQueue,
    connect,
    google_env,
)
from tests.support.google_oauth import FakeGoogleOAuth
from worker import wiring


@pytest.fixture
def fake() -> Iterator[FakeGoogleCalendar]:
    server = FakeGoogleCalendar()
    server.add_calendar(ACCOUNT, "Work", "UTC", "owner", primary=True)
    server.add_calendar(SECONDARY, "Team", "Europe/Berlin", "reader")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth(fake: FakeGoogleCalendar) -> Iterator[FakeGoogleOAuth]:
    server = FakeGoogleOAuth(fake, CLIENT_ID, CLIENT_SECRET)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The provider's in-call backoff records its delays instead of sleeping them."""
    recorded: list[float] = []
    original = backoff_module.Backoff

    def recording_backoff(*args: Any, **kwargs: Any) -> backoff_module.Backoff:
        kwargs.setdefault("sleep", recorded.append)
        return original(*args, **kwargs)

    monkeypatch.setattr("connectors.google.provider.Backoff", recording_backoff)
    return recorded


@pytest.fixture
def settings(
    fake: FakeGoogleCalendar, oauth: FakeGoogleOAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float],
) -> Iterator[Settings]:
    for key, value in google_env(fake, oauth, tmp_path / "data").items():
        monkeypatch.setenv(key, value)
    wiring.use(None)
    wiring.set_sending_enabled(False)
    yield Settings()
    wiring.set_sending_enabled(True)
    wiring.use(None)


@pytest.fixture
def queue(store: Store) -> RecordingQueue:
    return RecordingQueue(store)


@pytest.fixture
def client(store: Store, settings: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    app = create_app(store, settings, tasks=queue)
    publish(store, EXPERT, now=utcnow())
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def connected(client: TestClient, oauth: FakeGoogleOAuth, queue: RecordingQueue) -> dict[str, Any]:
    """A connected expert whose first sync and watch have run."""
    connection = connect(client, oauth)
    queue.run()
    return connection
