"""Microsoft 365: latency from a Graph change notification to the busy block in
``GET /v1/experts/{id}/busy``, and the Graph requests of a first and an incremental sync.

Latency: each round adds one event to the fake Graph calendar, posts the change notification
to the API (a real uvicorn server, ``POST /v1/webhooks/microsoft`` with the subscription's
clientState), and polls the busy endpoint until the block appears; the time between the POST
and the first answer showing it is one sample. In between everything is real: the receiver's
checks and coalescing, the broker, a real ``celery worker`` process running the delta sync
with calbook's Graph client (and MSAL for tokens) against the fake on 127.0.0.1, the store.

Requests: a calendar of 10,000 events is connected (first sync: every page of the delta),
then 10 events change and one notification arrives (incremental: the delta link's pages).

    python bench/microsoft_webhook_latency.py                 # both brokers, 30 rounds each
    python bench/microsoft_webhook_latency.py --broker redis --rounds 50 --events 10000

Embedded: SQLite + kombu's SQLAlchemy broker (polled). Redis: PostgreSQL + Redis (the
runner's own Redis database, CALBOOK_BENCH_REDIS_URL or CALBOOK_TEST_REDIS_URL).
Target: p95 < 2 s on Redis.
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
from booking_engine.services import calendar_sync  # noqa: E402
from tests.support.fakes.microsoft_graph import FakeGraph  # noqa: E402
from tests.support.microsoft import CLIENT_ID, CLIENT_SECRET, WORK  # noqa: E402
from tests.support.microsoft_live import Live, live_microsoft, wait_until  # noqa: E402

REDIS_URL = os.environ.get("CALBOOK_BENCH_REDIS_URL", os.environ.get("CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
FMT = "%Y-%m-%dT%H:%M:%S.0000000"


def _event(day: int, hour: int, subject: str) -> dict[str, object]:
    start = (utcnow() + timedelta(days=day)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return {"subject": subject, "start": {"dateTime": start.strftime(FMT), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=30)).strftime(FMT), "timeZone": "UTC"}}


def run_rounds(live: Live, rounds: int, warmup: int = 2) -> list[float]:
    samples: list[float] = []
    for index in range(warmup + rounds):
        count = len(live.busy(days=rounds + warmup + 5))
        live.fake.put_event(WORK, _event(2 + index, 10, f"bench {index}"))
        started = time.perf_counter()
        assert live.notify() == 202
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


def _delta_requests(fake: FakeGraph) -> int:
    with fake.lock:
        return sum(1 for _, path in fake.log if "calendarView/delta" in path)


def request_counts(url: str, broker: str, tmp: str, events: int) -> None:
    fake = FakeGraph(CLIENT_ID, CLIENT_SECRET)
    fake.add_calendar(WORK, "Calendar", can_edit=True, default=True)
    for index in range(events):
        fake.put_event(WORK, _event(1 + index % 170, index % 24, f"e{index}"))
    with live_microsoft(url, broker, Path(tmp) / "data-count", fake=fake) as live:
        wait_until(lambda: calendar_sync.get_cursor(live.store, live.connection_id, WORK), timeout=120,
                   what="the first sync")
        first, graph_first = _delta_requests(fake), fake.requests["graph"]
        cursor = calendar_sync.get_cursor(live.store, live.connection_id, WORK)
        with fake.lock:
            changed = list(fake.calendars[WORK].events.values())[:10]
        for item in changed:
            fake.put_event(WORK, {**item, "subject": "moved"})
        assert live.notify() == 202
        wait_until(lambda: calendar_sync.get_cursor(live.store, live.connection_id, WORK) != cursor, timeout=60,
                   what="the incremental sync")
        incremental = _delta_requests(fake) - first
        print(f"requests  {events} events: first sync {first} delta pages ({graph_first} Graph requests in all,"
              f" with calendars and the subscription); 10 changes: {incremental} delta request(s)", flush=True)


def bench_embedded(rounds: int, events: int) -> list[float]:
    from booking_engine.store.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        upgrade(url)
        with live_microsoft(url, f"sqla+sqlite:///{tmp}/broker.sqlite", Path(tmp) / "data") as live:
            samples = run_rounds(live, rounds)
        if events:
            url2 = f"sqlite:///{tmp}/count.sqlite"
            upgrade(url2)
            request_counts(url2, f"sqla+sqlite:///{tmp}/broker2.sqlite", tmp, events)
        return samples


def bench_redis(rounds: int) -> list[float]:
    import redis

    from bench._common import scratch_store

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        with scratch_store("postgresql") as store, tempfile.TemporaryDirectory() as tmp:
            url = store.engine.url.render_as_string(hide_password=False)
            with live_microsoft(url, REDIS_URL, Path(tmp) / "data", concurrency=4) as live:
                return run_rounds(live, rounds)
    finally:
        client.flushdb()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["embedded", "redis", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--events", type=int, default=10_000, help="calendar size for the request counts (0: skip)")
    args = parser.parse_args()
    if args.broker in ("embedded", "both"):
        report("embedded", bench_embedded(args.rounds, args.events))
    if args.broker in ("redis", "both"):
        report("redis", bench_redis(args.rounds))


if __name__ == "__main__":
    main()
