"""Helpers of the rate limiter tests: a shared store's address, and the work other processes do.

The functions here run in child processes (``multiprocessing`` with ``spawn``: a fresh
interpreter, nothing shared with the test but the store and the environment), so that "every
worker" means separate processes, not threads of one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from connectors.rate_limits.limiter import RateLimiter, Store
from connectors.rate_limits.limits import Bucket, Rate, RequestPlan


@dataclass(frozen=True, slots=True)
class SharedStore:
    kind: str  # "redis" or "database"
    url: str
    prefix: str


def open_store(kind: str, url: str) -> Store:
    if kind == "redis":
        from connectors.rate_limits.redis_store import RedisStore

        return RedisStore.from_url(url)
    from connectors.rate_limits.database_store import DatabaseStore

    return DatabaseStore.from_url(url)


def grant_times(limiter: RateLimiter, plan: RequestPlan, start_at: float, stop_at: float, threads: int) -> list[float]:
    """``threads`` threads take turns as fast as the limiter lets them between the two instants;
    the wall-clock time of each grant."""
    granted: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            with limiter.acquire(plan, max_wait=60):
                now = time.time()
                if now < stop_at:
                    with lock:
                        granted.append(now)

    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return granted


def hammer(kind: str, url: str, key: str, interval: float, burst: int, seconds: float, threads: int,
           ready: Any, results: Any) -> None:
    """A child process: its own limiter on the shared store, its threads' grant times to ``results``.

    It connects first (a take from a bucket of its own), then waits at ``ready`` for the others, so
    that every process draws from the bucket during the same seconds."""
    limiter = RateLimiter(open_store(kind, url))
    plan = RequestPlan((Bucket(key, Rate(interval, burst)),))
    try:
        limiter.store.take([Bucket(key + ":warm-up", Rate(interval, 1000))])
        ready.wait(timeout=120)
        start_at = time.time() + 0.1
        results.put(grant_times(limiter, plan, start_at, start_at + seconds, threads))
    finally:
        limiter.close()


def list_calendars_in_threads(db_url: str, connection_id: str, kind: str, store_url: str, prefix: str,
                              threads: int, ready: Any, results: Any) -> None:
    """A child process: ``threads`` Microsoft providers of one connection list its calendars at once,
    once every process has its providers open (``ready``); the errors they met go to ``results``."""
    from booking_engine.services import connections as connection_service
    from booking_engine.store.db import Store as BookingStore
    from config.settings import Settings
    from connectors.factory import open_provider
    from connectors.rate_limits.provider_limits import ProviderLimits

    settings = Settings()
    settings.rate_limit.key_prefix = prefix
    limiter = RateLimiter(open_store(kind, store_url))
    limits = ProviderLimits(limiter, settings.rate_limit)
    store = BookingStore.from_url(db_url)
    connection = connection_service.load_for_sync(store, connection_id)
    assert connection is not None
    providers = [open_provider(connection, settings, "UTC", limits=limits) for _ in range(threads)]
    errors: list[str] = []

    def work(provider: Any) -> None:
        try:
            provider.list_calendars()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(repr(exc))

    ready.wait(timeout=120)
    running = [threading.Thread(target=work, args=(provider,)) for provider in providers]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    for provider in providers:
        provider.close()
    store.dispose()
    limiter.close()
    results.put(errors)
