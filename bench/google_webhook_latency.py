"""Latency from a Google push notification to the new busy block in ``GET /v1/experts/{id}/busy``.

Each round adds one event to the fake Google calendar, posts the notification to the API
(``POST /v1/webhooks/google`` with the channel's token), and polls the busy endpoint until
the block appears; the time between the POST and the first answer showing the block is one
sample. The work in between is real: the API's coalescing and queueing, the broker, a real
``celery worker`` process running the incremental sync with google-api-python-client
against the fake Calendar API on 127.0.0.1, the store.

    python bench/google_webhook_latency.py                 # both brokers, 30 rounds each
    python bench/google_webhook_latency.py --broker redis --rounds 50

Embedded: SQLite + kombu's SQLAlchemy broker (polled every 0.5 s). Redis: PostgreSQL +
Redis. Target: p95 < 2 s on Redis. Every scratch database, Redis db and process is removed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from booking_engine.clock import utcnow  # noqa: E402
from tests.support.google_integration import ACCOUNT  # noqa: E402
from tests.support.google_live import Live, live_google, wait_until  # noqa: E402

# The Redis database of whoever runs this (the same setting as the tests): never someone else's.
REDIS_URL = os.environ.get("CALBOOK_BENCH_REDIS_URL", os.environ.get("CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


def _event(index: int) -> dict[str, dict[str, str]]:
    # One hour on a day of its own, so blocks never merge and each round adds exactly one.
    start = (utcnow() + timedelta(days=2 + index)).replace(hour=10, minute=0, second=0, microsecond=0)
    return {"start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}}


def run_rounds(live: Live, rounds: int, warmup: int = 2) -> list[float]:
    samples: list[float] = []
    for index in range(warmup + rounds):
        count = len(live.busy(days=rounds + warmup + 5))
        live.fake.add_event(ACCOUNT, {"summary": f"bench {index}", **_event(index)})
        started = time.perf_counter()
        assert live.notify(index) == 200
        wait_until(lambda count=count: len(live.busy(days=rounds + warmup + 5)) > count, timeout=30,
                   what="the new busy block", interval=0.01)
        if index >= warmup:
            samples.append(time.perf_counter() - started)
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(round(len(ordered) * 0.95)) - 1)]
    print(f"{name:9s} n={len(ordered):3d}  p50={statistics.median(ordered) * 1000:7.1f} ms  "
          f"p95={p95 * 1000:7.1f} ms  max={ordered[-1] * 1000:7.1f} ms", flush=True)


def bench_embedded(rounds: int) -> list[float]:
    from booking_engine.store.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        upgrade(url)
        with live_google(url, f"sqla+sqlite:///{tmp}/broker.sqlite", Path(tmp) / "data") as live:
            return run_rounds(live, rounds)


def bench_redis(rounds: int) -> list[float]:
    import redis

    from bench._common import scratch_store

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        with scratch_store("postgresql") as store, tempfile.TemporaryDirectory() as tmp:
            url = store.engine.url.render_as_string(hide_password=False)
            with live_google(url, REDIS_URL, Path(tmp) / "data", concurrency=4) as live:
                return run_rounds(live, rounds)
    finally:
        client.flushdb()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["embedded", "redis", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if args.broker in ("embedded", "both"):
        report("embedded", bench_embedded(args.rounds))
    if args.broker in ("redis", "both"):
        report("redis", bench_redis(args.rounds))


if __name__ == "__main__":
    main()
