"""Shared set-up for the benchmarks: scratch databases and a published expert."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert, text

from booking_engine.store.db import Store
from booking_engine.store.migrate import upgrade
from booking_engine.store.tables import busy_blocks

PG_ADMIN_URL = os.environ.get("CALBOOK_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2030, 3, 1, tzinfo=UTC)


@contextmanager
def scratch_store(kind: str) -> Iterator[Store]:
    """A migrated throwaway database of ``kind`` ('sqlite' or 'postgresql'), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            upgrade(url)
            store = Store.from_url(url)
            try:
                yield store
            finally:
                store.dispose()
        return
    name = f"calbook_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        store = Store.from_url(url)
        try:
            yield store
        finally:
            store.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def random_busy(count: int, days: int = 30, seed: int = 7) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        start = NOW + timedelta(minutes=5 * rng.randrange(days * 24 * 12))
        out.append((start, start + timedelta(minutes=rng.choice([15, 30, 45, 60]))))
    return out


def store_busy(store: Store, expert_id: str, busy: list[tuple[datetime, datetime]]) -> None:
    rows = [
        {"expert_id": expert_id, "connection_id": None, "calendar_id": "bench", "external_id": f"ev{i}",
         "start_time": s, "end_time": e}
        for i, (s, e) in enumerate(busy)
    ]
    with store.write() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(busy_blocks), rows[i : i + 5000])


def measure(fn: Callable[[], object], repeat: int = 20, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": samples[max(0, int(len(samples) * 0.95) - 1)],
        "min_ms": samples[0],
    }


def fmt(result: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:8.2f}" for k, v in result.items())
