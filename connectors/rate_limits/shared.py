"""One limiter per process and store, found from the settings a caller hands in.

``connectors.factory`` opens every provider with the settings it is given (decision 0017);
``provider_limits(settings)`` turns them into the gates of that provider, on the limiter of the
store they name (``CALBOOK_RATE_LIMIT_STORE``): Redis, the database, this process only, or none.
The limiter is built on first use and kept for the process (its Redis pool or its small engine
is the resource); after a ``fork`` a child keeps the objects but not the parent's connections.
Nothing is opened at import time.
"""

from __future__ import annotations

import os
import threading

from config.settings import Settings
from connectors.rate_limits.limiter import RateLimiter, Store
from connectors.rate_limits.provider_limits import ProviderLimits

_limiters: dict[tuple[str, str], RateLimiter] = {}
_lock = threading.Lock()


def store_of(settings: Settings) -> tuple[str, str]:
    """``(kind, url)`` of the store the settings name: ``redis``, ``database``, ``memory`` or ``off``."""
    chosen = settings.rate_limit.store
    redis_url = settings.rate_limit_redis_url()
    if chosen == "redis" or (chosen == "auto" and redis_url):
        if not redis_url:
            raise ValueError("CALBOOK_RATE_LIMIT_STORE=redis needs CALBOOK_RATE_LIMIT_REDIS_URL or a Redis broker")
        return "redis", redis_url
    if chosen in ("database", "auto"):
        return "database", settings.resolved_database_url()
    return chosen, ""


def limiter_for(kind: str, url: str) -> RateLimiter | None:
    """This process's limiter on that store (``off``: none)."""
    if kind == "off":
        return None
    with _lock:
        limiter = _limiters.get((kind, url))
        if limiter is None:
            limiter = _limiters[(kind, url)] = RateLimiter(_open_store(kind, url))
        return limiter


def _open_store(kind: str, url: str) -> Store:
    if kind == "redis":
        from connectors.rate_limits.redis_store import RedisStore

        return RedisStore.from_url(url)
    if kind == "database":
        from connectors.rate_limits.database_store import DatabaseStore

        return DatabaseStore.from_url(url)
    from connectors.rate_limits.memory_store import MemoryStore

    return MemoryStore()


def provider_limits(settings: Settings) -> ProviderLimits:
    """The gates of every provider, under these settings' limits and on their store's limiter."""
    return ProviderLimits(limiter_for(*store_of(settings)), settings.rate_limit)


def close_all() -> None:
    """Close every limiter of this process (tests, benches, a clean shutdown)."""
    with _lock:
        for limiter in _limiters.values():
            limiter.close()
        _limiters.clear()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for limiter in _limiters.values():
        limiter.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
