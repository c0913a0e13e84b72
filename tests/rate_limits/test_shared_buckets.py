"""The shared stores (Redis, SQLite, PostgreSQL): many threads in several processes drawing from one
bucket never get more than its rate, counted against the clock; pauses, all-or-none takes,
concurrency slots and bounded memory. Counts are asserted, not timings."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, select

from booking_engine.store.rate_limit_tables import rate_limit_buckets
from booking_engine.store.repositories import rate_limits as repo
from connectors.base import TransientError
from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.limits import Bucket, Rate, RequestPlan, Slots
from tests.support.rate_limits import SharedStore, grant_times, hammer, open_store

INTERVAL = 0.025  # 40 a second
BURST = 5
SECONDS = 3.0
SLACK = 3
"""Grants are timed by the client, a moment after the store granted them: a few may bunch up."""


def _most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_threads_and_processes_never_exceed_the_rate(shared: SharedStore, limiter: RateLimiter) -> None:
    key = shared.prefix + "one-bucket"
    rate = Rate(INTERVAL, BURST)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Barrier(3)
    children = [context.Process(target=hammer, args=(shared.kind, shared.url, key, INTERVAL, BURST, SECONDS, 4,
                                                     ready, results)) for _ in range(2)]
    for child in children:
        child.start()
    ready.wait(timeout=120)
    start_at = time.time() + 0.1
    here = grant_times(limiter, RequestPlan((Bucket(key, rate),)), start_at, start_at + SECONDS, threads=4)
    theirs = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    granted = here + [t for child in theirs for t in child]

    assert all(theirs), "every process was granted some requests"
    assert len(granted) <= rate.most_in(max(granted) - min(granted)) + 1 + SLACK
    assert _most_in_any_window(granted, 1.0) <= rate.most_in(1.0) + SLACK
    assert len(granted) >= rate.most_in(SECONDS) / 4  # the limiter grants, it does not only refuse


def test_a_pause_holds_every_worker_off(shared: SharedStore, limiter: RateLimiter) -> None:
    plan = RequestPlan((Bucket(shared.prefix + "paused", Rate(0.001, 100)),))
    other = RateLimiter(open_store(shared.kind, shared.url))  # another worker: nothing in common but the store
    try:
        assert other.store.take(plan.buckets) == 0.0
        limiter.pause(plan, 30.0)
        assert 20.0 < other.store.take(plan.buckets) <= 30.0
        with pytest.raises(TransientError) as raised, other.acquire(plan, max_wait=0.5):
            pass
        assert raised.value.retry_after is not None and 20.0 < raised.value.retry_after <= 30.0
    finally:
        other.close()


def test_a_take_draws_from_every_bucket_or_from_none(shared: SharedStore, limiter: RateLimiter) -> None:
    roomy = Bucket(shared.prefix + "roomy", Rate(60.0, 3))
    tight = Bucket(shared.prefix + "tight", Rate(60.0, 1))
    assert limiter.store.take([tight]) == 0.0
    assert limiter.store.take([roomy, tight]) > 0  # tight is empty: roomy must not lose a token
    assert [limiter.store.take([roomy]) for _ in range(4)][:3] == [0.0, 0.0, 0.0]


def test_slots_hold_across_stores_and_expire(shared: SharedStore, limiter: RateLimiter) -> None:
    slots = Slots(shared.prefix + "slots", limit=4, lease_seconds=1.0)
    other = RateLimiter(open_store(shared.kind, shared.url))
    try:
        assert [limiter.store.claim(slots, f"a{i}") for i in range(3)] == [True] * 3
        assert other.store.claim(slots, "b0") is True
        assert other.store.claim(slots, "b1") is False  # four in flight, whichever process holds them
        limiter.store.release(slots, "a0")
        assert other.store.claim(slots, "b1") is True
        time.sleep(1.1)  # every lease ran out (a dead worker's too)
        assert [other.store.claim(slots, f"c{i}") for i in range(4)] == [True] * 4
    finally:
        other.close()


def test_memory_stays_bounded(shared: SharedStore, limiter: RateLimiter) -> None:
    """Redis keys expire once their bucket is full again; database rows are pruned then."""
    buckets = [Bucket(f"{shared.prefix}host-{i}", Rate(0.2, 1)) for i in range(20)]
    for bucket in buckets:
        assert limiter.store.take([bucket]) == 0.0
    if shared.kind == "redis":
        client = redis.Redis.from_url(shared.url)
        ttls = [client.pttl(b.key) for b in buckets]
        assert all(0 < ttl <= 1300 for ttl in ttls), ttls
        time.sleep(1.4)
        assert client.exists(*[b.key for b in buckets]) == 0
        client.close()
        return
    engine = create_engine(shared.url)
    like = rate_limit_buckets.c.key.like(shared.prefix + "%")
    count = select(func.count()).select_from(rate_limit_buckets).where(like)
    try:
        with engine.begin() as conn:
            assert conn.execute(count).scalar_one() == 20
        time.sleep(0.3)
        with engine.begin() as conn:
            repo.prune(conn, repo.now_us(conn))
            assert conn.execute(count).scalar_one() == 0
    finally:
        engine.dispose()



def _waits(provider: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("calbook_rate_limit_waits_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


def test_waits_and_refusals_are_counted_by_provider(shared: SharedStore, limiter: RateLimiter) -> None:
    plan = RequestPlan((Bucket(shared.prefix + "counted", Rate(0.2, 1)),), provider="caldav")
    waited, refused = _waits("caldav", "waited"), _waits("caldav", "refused")
    seconds = REGISTRY.get_sample_value("calbook_rate_limit_wait_seconds_total", {"provider": "caldav"}) or 0.0
    with limiter.acquire(plan, max_wait=5):
        pass  # the burst: no wait
    assert _waits("caldav", "waited") == waited
    with limiter.acquire(plan, max_wait=5):
        pass  # the next token comes 0.2 s later
    assert _waits("caldav", "waited") == waited + 1
    assert (REGISTRY.get_sample_value("calbook_rate_limit_wait_seconds_total", {"provider": "caldav"}) or 0) > seconds
    with pytest.raises(TransientError), limiter.acquire(plan, max_wait=0.01):
        pass
    assert _waits("caldav", "refused") == refused + 1
