"""Benchmark: the shared rate limiter's cost per request and its ceiling, on Redis, SQLite and PostgreSQL.

For each store (``connectors/rate_limits``, docs/rate-limits.md):

* **overhead**: one thread, a bucket that never runs dry, N acquires: microseconds per acquire
  (p50, p95) for a Google-shaped request (two buckets: user and project) and a Graph-shaped one
  (two buckets and a concurrency slot: claim, take, release);
* **ceiling**: P processes x T threads on one never-dry bucket for a few seconds: grants/s, the
  most a store hands out (every worker of a deployment shares it);
* **accuracy**: the same processes on one bucket of ``--rate`` a second: grants/s against the rate
  (it must not exceed ``rate + burst / seconds``).

    .venv/bin/python bench/rate_limiter.py                          # all three stores
    .venv/bin/python bench/rate_limiter.py --stores redis --acquires 5000 --processes 4

Redis is ``CALBOOK_BENCH_REDIS_URL`` (else ``CALBOOK_TEST_REDIS_URL``, else the local one), keys
under a fresh prefix, deleted afterwards; PostgreSQL a scratch database (``CALBOOK_BENCH_PG_URL``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench._common import scratch_store  # noqa: E402
from connectors.rate_limits.limiter import RateLimiter, Store  # noqa: E402
from connectors.rate_limits.limits import Bucket, Rate, RequestPlan, Slots  # noqa: E402

REDIS_URL = os.environ.get("CALBOOK_BENCH_REDIS_URL") or os.environ.get(
    "CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NEVER_DRY = Rate(1e-6, 1_000_000_000)


def open_store(kind: str, url: str) -> Store:
    if kind == "redis":
        from connectors.rate_limits.redis_store import RedisStore

        return RedisStore.from_url(url)
    from connectors.rate_limits.database_store import DatabaseStore

    return DatabaseStore.from_url(url)


@contextmanager
def store_url(name: str) -> Iterator[tuple[str, str]]:
    """``(kind, url)`` of a throwaway store called ``name``."""
    if name == "redis":
        yield "redis", REDIS_URL
        return
    with scratch_store(name) as store:
        yield "database", store.engine.url.render_as_string(hide_password=False)


def overhead(kind: str, url: str, prefix: str, acquires: int) -> dict[str, tuple[float, float]]:
    limiter = RateLimiter(open_store(kind, url))
    plans = {
        "google (2 buckets)": RequestPlan((Bucket(prefix + "user", NEVER_DRY), Bucket(prefix + "project", NEVER_DRY))),
        "graph (2 buckets + slot)": RequestPlan(
            (Bucket(prefix + "mailbox", NEVER_DRY), Bucket(prefix + "app", NEVER_DRY)),
            Slots(prefix + "mailbox:slots", 4)),
    }
    out = {}
    try:
        for name, plan in plans.items():
            for _ in range(min(50, acquires)):  # connections opened, scripts loaded
                with limiter.acquire(plan, max_wait=1):
                    pass
            took = []
            for _ in range(acquires):
                began = time.perf_counter()
                with limiter.acquire(plan, max_wait=1):
                    pass
                took.append((time.perf_counter() - began) * 1e6)
            took.sort()
            out[name] = (statistics.median(took), took[int(len(took) * 0.95)])
    finally:
        limiter.close()
    return out


def _hammer(kind: str, url: str, key: str, interval: float, burst: int, seconds: float, threads: int,
            ready: Any, results: Any) -> None:
    limiter = RateLimiter(open_store(kind, url))
    plan = RequestPlan((Bucket(key, Rate(interval, burst)),))
    times: list[list[float]] = [[] for _ in range(threads)]
    limiter.store.take([Bucket(key + ":warm-up", NEVER_DRY)])
    ready.wait(timeout=120)
    stop_at = time.time() + seconds

    def work(index: int) -> None:
        while time.time() < stop_at:
            with limiter.acquire(plan, max_wait=60):
                now = time.time()
                if now < stop_at:
                    times[index].append(now)

    running = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    limiter.close()
    granted = [t for thread in times for t in thread]
    results.put((len(granted), min(granted, default=stop_at), max(granted, default=stop_at)))


def grants_per_second(kind: str, url: str, key: str, rate: Rate, seconds: float, processes: int,
                      threads: int) -> float:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Barrier(processes)
    children = [context.Process(target=_hammer, args=(kind, url, key, rate.interval, rate.burst, seconds, threads,
                                                      ready, results)) for _ in range(processes)]
    for child in children:
        child.start()
    answers = [results.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join(timeout=30)
    span = max(a[2] for a in answers) - min(a[1] for a in answers)  # first grant to last, any process
    return sum(a[0] for a in answers) / max(span, 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="redis,sqlite,postgresql")
    parser.add_argument("--acquires", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second of the accuracy bucket")
    args = parser.parse_args()

    print(f"{args.processes} processes x {args.threads} threads, {args.seconds:g} s a phase, "
          f"{args.acquires} acquires for the overhead")
    for name in args.stores.split(","):
        prefix = f"calbook:bench:{uuid.uuid4().hex[:8]}:"
        with store_url(name) as (kind, url):
            costs = overhead(kind, url, prefix, args.acquires)
            ceiling = grants_per_second(kind, url, prefix + "ceiling", NEVER_DRY, args.seconds, args.processes,
                                        args.threads)
            limited = Rate.per_second(args.rate, 10)
            got = grants_per_second(kind, url, prefix + "limited", limited, args.seconds, args.processes,
                                    args.threads)
        if kind == "redis":
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(prefix + "*"):
                client.delete(key)
            client.close()
        print(f"\n{name}")
        for plan, (p50, p95) in costs.items():
            print(f"  overhead per acquire, {plan:<25} p50 {p50:7.0f} us   p95 {p95:7.0f} us")
        print(f"  ceiling, one never-dry bucket          {ceiling:9.0f} grants/s")
        bound = args.rate + (limited.burst + 1) / args.seconds
        print(f"  accuracy at {args.rate:g}/s (burst {limited.burst})        {got:9.1f} grants/s "
              f"(at most {bound:.1f})")


if __name__ == "__main__":
    main()
