"""The limiter's shared stores, each test on its own key prefix: real Redis, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.rate_limits.limiter import RateLimiter
from tests.support.rate_limits import SharedStore, open_store


@pytest.fixture
def limiter(shared: SharedStore) -> Iterator[RateLimiter]:
    """A limiter on the shared store, as one worker process holds it."""
    made = RateLimiter(open_store(shared.kind, shared.url))
    yield made
    made.close()
