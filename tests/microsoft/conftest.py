"""Microsoft integration: the API, the worker functions, real ``msal`` and calbook's httpx client
against the loopback Graph + token endpoint fake (``tests.support.fakes.microsoft_graph``).

In-process tests give the app a :class:`RecordingQueue`: it records what the API queued (so
coalescing can be counted) and runs it on demand through the same worker functions the
Celery tasks call.
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
from connectors.microsoft import graph as graph_module
from tests.support.factories import publish
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import (  # noqa: F401
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    ENCRYPTION_KEY,
    EXPERT,
    JWT_SECRET,
    PUBLIC_BASE,
    TEAM,
    WEBHOOK,
    WORK,
    RecordingQueue,
    busy,
    connect,
    connection_row,
    event,
    microsoft_env,
    outbox_types,
    query_of,
    stored_credentials,
    subscriptions,
)
from worker import wiring


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    server = FakeGraph(CLIENT_ID, CLIENT_SECRET)
    server.add_calendar(WORK, "Calendar", can_edit=True, default=True)
    server.add_calendar(TEAM, "Team (shared)", can_edit=False)
    server.validate_notification_urls = False  # no real server in-process; the handshake route is tested apart
    server.start()
    yield server
    server.stop()




@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Graph's in-call backoff records its delays instead of sleeping them."""
    recorded: list[float] = []
    original = graph_module.GraphBackoff

    def recording(*args: Any, **kwargs: Any) -> graph_module.GraphBackoff:
        kwargs.setdefault("sleep", recorded.append)
        return original(*args, **kwargs)

    monkeypatch.setattr("connectors.microsoft.graph.GraphBackoff", recording)
    return recorded


@pytest.fixture
def settings(
    fake: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> Iterator[Settings]:
    for key, value in microsoft_env(fake, tmp_path / "data").items():
        monkeypatch.setenv(key, value)
    wiring.set_sending_enabled(False)
    yield Settings()
    wiring.set_sending_enabled(True)




@pytest.fixture
def queue(store: Store, settings: Settings) -> RecordingQueue:
    return RecordingQueue(store, settings)


@pytest.fixture
def client(store: Store, settings: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    app = create_app(store, settings, tasks=queue)
    publish(store, EXPERT, now=utcnow())
    with TestClient(app) as test_client:
        yield test_client






@pytest.fixture
def connected(client: TestClient, fake: FakeGraph, queue: RecordingQueue) -> dict[str, Any]:
    connection = connect(client, fake)
    queue.run()
    return connection












