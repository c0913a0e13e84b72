"""The production layout, run as docker-compose runs it: ``calbook migrate``, ``calbook api --workers 2``,
``calbook worker`` and ``calbook beat`` on PostgreSQL and Redis (docs/operations.md#running).

What an operator reads is checked on the real processes' output: calbook's own log lines
appear in every process (the API's worker processes included), an idle stack stays quiet,
``CALBOOK_LOG_LEVEL=WARNING`` silences INFO everywhere, ``/metrics`` parses with the official
Prometheus parser and adds up across the two API processes, and SIGTERM is a clean exit 0.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import select

from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from tests.support.db import truncate_all
from tests.support.processes import (
    Proc,
    Processes,
    common_env,
    processes,
    publish_and_book,
    wait_until_up,
)
from tests.support.worker import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: A heartbeat every second, taken for dead after 4 s: readiness follows the worker in seconds.
HEARTBEAT = {"CALBOOK_WORKER_HEARTBEAT_INTERVAL_SECONDS": "1", "CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS": "4"}


@dataclass
class Stack:
    base: str
    worker_metrics: str
    api: Proc
    worker: Proc
    beat: Proc
    store: Store
    metrics_dir: Path
    env: dict[str, str]

    @property
    def procs(self) -> tuple[Proc, Proc, Proc]:
        return self.api, self.worker, self.beat


def _start_stack(group: Processes, pg_url: str, redis_url: str, level: str, **extra: str) -> Stack:
    port, worker_port = free_port(), free_port()
    metrics_dir = group.directory / "api-metrics"
    scratch = group.directory / "tmp"  # where the commands make (and must remove) their metrics directories
    scratch.mkdir()
    env = common_env(group.directory / "data", CALBOOK_DATABASE_URL=pg_url, CALBOOK_BROKER_URL=redis_url,
                     CALBOOK_LOG_LEVEL=level, TMPDIR=str(scratch), **HEARTBEAT, **extra)
    migrated = group.run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    api = group.start("api", ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                      {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    worker = group.start("worker", ["worker", "--concurrency", "2", "--metrics-port", str(worker_port)], env)
    beat = group.start("beat", ["beat"], env)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, api)
    worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
    wait_until(lambda: _answers(worker_metrics), 90, "the worker to serve its metrics")
    wait_until(lambda: _answers(f"{base}/readyz"), 60, "the API to see the worker's heartbeat")
    return Stack(base, worker_metrics, api, worker, beat, Store.from_url(pg_url), metrics_dir, env)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def fresh_redis(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


@pytest.fixture
def stack(pg_url: str, pg_store: Store, fresh_redis: str, tmp_path: Path) -> Iterator[Stack]:
    truncate_all(pg_store)
    with processes(tmp_path) as group:
        running = _start_stack(group, pg_url, fresh_redis, "INFO")
        try:
            yield running
        finally:
            running.store.dispose()


def _samples(url: str) -> list[Sample]:
    """Every sample of a scrape, through the official Prometheus text parser."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _dispatched(store: Store, booking_id: str) -> bool:
    with store.read() as conn:
        rows = conn.execute(select(outbox.c.dispatched_at).where(outbox.c.aggregate_id == booking_id)).all()
    return bool(rows) and all(r[0] is not None for r in rows)


def _per_process_counts(metrics_dir: Path, route: str) -> list[float]:
    """``/healthz`` requests as each API process counted them, from its own multiprocess file."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = []
    for path in sorted(metrics_dir.glob("counter_*.db")):
        single = metrics_dir.parent / f"single-{path.stem}"
        single.mkdir(exist_ok=True)
        shutil.copy(path, single / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(single))
        counts.append(sum(s.value for metric in registry.collect() for s in metric.samples
                          if s.name == "calbook_http_requests_total" and s.labels.get("route") == route))
    return counts


def test_every_process_logs_calbook_lines_and_metrics_move(stack: Stack) -> None:
    before = _samples(f"{stack.base}/metrics")
    booking = publish_and_book(stack.base)
    wait_until(lambda: _dispatched(stack.store, booking["id"]), 60, "the worker to dispatch the booking's events")

    # The application's own line, from a uvicorn worker process of `calbook api --workers 2`.
    api_log = stack.api.text()
    assert re.search(rf"INFO api booking_engine\.services\.bookings: booking created booking_id={booking['id']}",
                     api_log), api_log[-3000:]
    assert re.search(r"INFO api calbook\.access: POST /v1/bookings 201 ", api_log), api_log[-3000:]
    wait_until(lambda: "outbox drained" in stack.worker.text(), 30, "the worker's own line")
    assert re.search(r"INFO worker worker\.tasks\.outbox: outbox drained .*dispatched=[1-9]", stack.worker.text())
    assert re.search(r"INFO beat celery\.beat: beat: Starting", stack.beat.text()), stack.beat.text()
    # One format: no uvicorn "INFO:     ..." and no Celery "[2026-...: INFO/MainProcess]" lines, no banner.
    for proc in stack.procs:
        for line in proc.lines():
            assert not line.startswith(("INFO:", "[")), (proc.name, line)
        assert "-------------- celery@" not in proc.text()

    after = _samples(f"{stack.base}/metrics")
    assert _value(after, "calbook_bookings_total", outcome="pending") == \
        _value(before, "calbook_bookings_total", outcome="pending") + 1
    assert _value(after, "calbook_http_requests_total", route="/v1/bookings", method="POST", status="201") == \
        _value(before, "calbook_http_requests_total", route="/v1/bookings", method="POST", status="201") + 1
    assert _value(after, "calbook_http_request_duration_seconds_count", route="/v1/bookings", method="POST") >= 1
    assert _value(after, "calbook_outbox_backlog") == 0
    assert _value(after, "calbook_database_up") == 1
    worker = _samples(stack.worker_metrics)
    assert _value(worker, "calbook_outbox_events_total", result="dispatched") >= 1
    assert _value(worker, "calbook_worker_tasks_total", task="calbook.outbox.dispatch", state="SUCCESS") >= 1


def test_metrics_add_up_across_both_api_processes(stack: Stack) -> None:
    sent = 0

    def hit(_: int) -> None:
        with httpx.Client(timeout=10) as fresh:  # a new connection each time: either process may accept it
            assert fresh.get(f"{stack.base}/healthz").status_code == 200

    with ThreadPoolExecutor(8) as pool:
        while sent < 2000:
            list(pool.map(hit, range(100)))
            sent += 100
            counts = _per_process_counts(stack.metrics_dir, "/healthz")
            if len([c for c in counts if c > 0]) >= 2:
                break
    counts = _per_process_counts(stack.metrics_dir, "/healthz")
    assert len([c for c in counts if c > 0]) == 2, f"the requests did not reach both API processes: {counts}"
    scraped = _value(_samples(f"{stack.base}/metrics"), "calbook_http_requests_total", route="/healthz")
    assert scraped == sum(counts) >= sent  # the startup probe adds one or two


def test_an_idle_stack_stays_quiet(stack: Stack) -> None:
    """A few seconds hold more ticks than an idle production minute: they log at most a few lines."""
    time.sleep(1.0)  # startup lines settle
    ticks_before = _value(_samples(stack.worker_metrics), "calbook_worker_tasks_total")
    lines_before = {p.name: len(p.lines()) for p in stack.procs}
    time.sleep(4.0)
    wait_until(lambda: _value(_samples(stack.worker_metrics), "calbook_worker_tasks_total") - ticks_before >= 42, 60,
             "42 idle ticks (a default idle minute's worth) to run")
    new_lines = {p.name: p.lines()[lines_before[p.name]:] for p in stack.procs}
    assert sum(len(lines) for lines in new_lines.values()) <= 3, new_lines


def test_readiness_status_and_metrics_follow_the_worker(stack: Stack, tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        seen = group.run(["status"], stack.env)
        assert seen.returncode == 0, seen.stdout + seen.stderr
        assert re.search(r"^workers\s+ok\s+1 seen: celery@", seen.stdout, re.M), seen.stdout
        assert "postgresql+psycopg://postgres@127.0.0.1" in seen.stdout and "outbox" in seen.stdout
        samples = _samples(f"{stack.base}/metrics")
        assert _value(samples, "calbook_workers_seen") == 1
        assert 0 <= _value(samples, "calbook_worker_heartbeat_age_seconds") < 4

        stack.worker.kill()  # kill -9: no goodbye, the heartbeat row just ages
        wait_until(lambda: httpx.get(f"{stack.base}/readyz", timeout=10).status_code == 503, 30,
                   "readiness to notice that no worker is left")
        answer = httpx.get(f"{stack.base}/readyz", timeout=10)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "no worker seen recently" in answer.json()["detail"], answer.text
        assert httpx.get(f"{stack.base}/healthz", timeout=10).status_code == 200  # alive, just not ready
        gone = group.run(["status", "--json"], stack.env)
    assert gone.returncode == 1
    document = json.loads(gone.stdout)
    assert document["ok"] is False and document["checks"]["workers"]["ok"] is False
    assert document["checks"]["database"]["ok"] and document["checks"]["broker"]["ok"]
    samples = _samples(f"{stack.base}/metrics")
    assert _value(samples, "calbook_workers_seen") == 0 and _value(samples, "calbook_worker_heartbeat_age_seconds") > 4


def test_sigterm_stops_every_process_with_exit_0(stack: Stack) -> None:
    publish_and_book(stack.base)
    for proc in (stack.beat, stack.worker, stack.api):
        assert proc.stop() == 0, f"{proc.name} exited non-zero:\n{proc.text()[-3000:]}"
    assert not any(p.popen.poll() is None for p in stack.procs)
    assert not list((stack.metrics_dir.parent / "tmp").glob("calbook-metrics-*"))


def test_log_level_warning_silences_info_in_every_process(
    pg_url: str, pg_store: Store, fresh_redis: str, tmp_path: Path,
) -> None:
    truncate_all(pg_store)
    with processes(tmp_path) as group:
        quiet = _start_stack(group, pg_url, fresh_redis, "WARNING")
        try:
            booking = publish_and_book(quiet.base)
            wait_until(lambda: _dispatched(quiet.store, booking["id"]), 60, "the worker to dispatch")
            time.sleep(1.0)
            for proc in quiet.procs:
                info = [line for line in proc.lines() if " INFO " in line or line.startswith("INFO")]
                assert not info, (proc.name, info)
            # The processes did run: the booking went through the API and out of the outbox.
            assert _value(_samples(quiet.worker_metrics), "calbook_outbox_events_total", result="dispatched") >= 1
        finally:
            quiet.store.dispose()
