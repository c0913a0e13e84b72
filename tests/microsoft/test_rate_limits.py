"""Graph's limits per mailbox hold across worker processes: never more than 4 requests in flight
for one mailbox, however many processes and threads ask, and a 429 with ``Retry-After`` keeps
every worker off that mailbox until it ends."""

from __future__ import annotations

import multiprocessing
import uuid
from typing import Any

import pytest

from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import TransientError
from connectors.factory import open_provider
from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.provider_limits import ProviderLimits
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.rate_limits import SharedStore, list_calendars_in_threads, open_store


@pytest.mark.parametrize("kind", ["redis", "database"])
def test_four_requests_per_mailbox_across_processes(
    kind: str, connected: dict[str, Any], fake: FakeGraph, store: Store, request: pytest.FixtureRequest,
) -> None:
    """The slots live in Redis, or in the connection's own database (SQLite or PostgreSQL)."""
    db_url = store.engine.url.render_as_string(hide_password=False)
    store_url = request.getfixturevalue("redis_url") if kind == "redis" else db_url
    prefix = f"calbook:test:{uuid.uuid4().hex[:12]}:"
    fake.delay = 0.3
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Barrier(2)
    children = [context.Process(target=list_calendars_in_threads, args=(
        db_url, connected["id"], kind, store_url, prefix, 4, ready, results)) for _ in range(2)]
    for child in children:
        child.start()
    errors = [results.get(timeout=90) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert errors == [[], []]
    assert fake.requests["graph"] >= 8
    assert fake.max_in_flight == 4  # eight threads in two processes; each process alone would allow four


def test_a_429_pauses_the_mailbox_for_every_worker(
    shared: SharedStore, connected: dict[str, Any], fake: FakeGraph, store: Store, settings: Settings,
    sleeps: list[float],
) -> None:
    section = settings.rate_limit.model_copy(update={"key_prefix": shared.prefix})
    connection = connection_service.load_for_sync(store, connected["id"])
    assert connection is not None
    worker_a = RateLimiter(open_store(shared.kind, shared.url))
    worker_b = RateLimiter(open_store(shared.kind, shared.url))
    try:
        fake.fail_next("me/calendars", 429, {"Retry-After": "30"})
        with open_provider(connection, settings, "UTC", limits=ProviderLimits(worker_a, section)) as provider, \
                pytest.raises(TransientError):
            provider.list_calendars()
        served = fake.requests["graph"]
        with open_provider(connection, settings, "UTC", limits=ProviderLimits(worker_b, section)) as provider, \
                pytest.raises(TransientError) as raised:
            provider.list_calendars()
        assert raised.value.retry_after is not None and raised.value.retry_after > 20
        assert fake.requests["graph"] == served  # worker B did not ask Graph
    finally:
        worker_a.close()
        worker_b.close()
