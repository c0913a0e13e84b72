"""Load benchmark of the HTTP API: ``GET .../slots`` and ``POST /v1/bookings`` on PostgreSQL.

What it does, all bounded in time and cleaned up afterwards:
1. creates a scratch PostgreSQL database (``CALBOOK_BENCH_PG_URL``, default the local
   server), migrates it, and seeds experts who are open around the clock;
2. starts ``calbook api --workers 2`` on a free port of 127.0.0.1 against it;
3. drives load from this process (a separate process from the server): keep-alive HTTP/1.1
   connections on asyncio with a minimal client, because a full HTTP client library would
   eat the CPU the server needs on a 2-core machine and measure itself;
4. prints throughput and p50/p99 latency per endpoint, and counts 5xx.

Bookings use non-overlapping slots (one-hour starts, round-robin over the experts), so
every request is a real insert that should answer 201.

Each read endpoint runs right after the bare-FastAPI ceiling (``bench/ceiling_app.py``, same
body size, same load generator) and its ratio is taken against that neighbour, since the load
of a shared machine drifts between runs. Targets (issue 17, 2-core machine): ``GET .../slots``
at 0.25 of the ceiling or more with p99 under 50 ms at 12 connections; ``POST /v1/bookings``
at 0.15 of pgbench's rate for the same transaction; no 5xx. Where the time goes and what was
cut: docs/performance.md.

    .venv/bin/python bench/api_load.py [--seconds 10] [--connections 12]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from api.auth import mint_token  # noqa: E402
from bench.http_wire import http_request, read_response  # noqa: E402
from bench.process_cpu import tree_cpu_seconds  # noqa: E402
from booking_engine.services import availability  # noqa: E402
from booking_engine.store.db import Store  # noqa: E402
from config.settings import Settings  # noqa: E402

ADMIN_URL = os.environ.get("CALBOOK_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
EXPERTS = 20
DAYS = 28


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    ceiling: Result | None = None
    """The bare-FastAPI ceiling measured just before this endpoint."""
    server_cpu: float = 0.0
    """CPU seconds the server's processes spent while this ran (``bench/process_cpu.py``)."""

    def report(self) -> str:
        count = len(self.latencies)
        if not count:
            return f"{self.name}: no requests completed"
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(count - 1, int(count * 0.99))] * 1000
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        cpu = f"   server CPU {self.server_cpu / count * 1000:5.2f} ms/req" if self.server_cpu else ""
        return (f"{self.name:<28} {count / self.seconds:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
                f"requests {count:6d}   5xx {server_errors}{cpu}   statuses {dict(sorted(self.statuses.items()))}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def drive(port: int, requests: Iterator[bytes], seconds: float, connections: int, result: Result) -> None:
    stop_at = time.perf_counter() + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                try:
                    request = next(requests)
                except StopIteration:
                    return
                started = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.seconds = time.perf_counter() - began


def seed(url: str) -> list[str]:
    store = Store.from_url(url)
    experts = [f"bench-expert-{i}" for i in range(EXPERTS)]
    body = {
        "timezone": "UTC",
        "weeklySchedule": {d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "24:00"}]}
                           for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "bufferBetweenBookingsMinutes": 0,
        "advanceBookingDays": DAYS + 2,
        "slotIncrementMinutes": 60,
        "hourlyRateCents": 6000,
    }
    for expert in experts:
        availability.set_availability(store, expert, expert, body, 0)
    store.dispose()
    return experts


def wait_healthy(process: subprocess.Popen[bytes], url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited during start-up")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{what} did not start within 60 s")


def start_server(url: str, port: int, data_dir: Path, code: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALBOOK_DATABASE_URL": url, "CALBOOK_JWT_SECRET": SECRET,
           "CALBOOK_DATA_DIR": str(data_dir), "CALBOOK_LOG_LEVEL": "WARNING", "PYTHONPATH": str(code),
           **extra_env}
    process = subprocess.Popen([sys.executable, "-m", "config.cli", "api", "--host", "127.0.0.1", "--port",
                                str(port), "--workers", "2"], cwd=code, env=env)
    wait_healthy(process, f"http://127.0.0.1:{port}/healthz", "calbook api")
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def start_ceiling(size: int) -> tuple[subprocess.Popen[bytes], int]:
    """A bare FastAPI app on uvicorn, two workers, answering ``size`` fixed bytes: the framework's ceiling."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--app-dir", str(ROOT / "bench"), "--host",
         "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "CEILING_BYTES": str(size)})
    wait_healthy(process, f"http://127.0.0.1:{port}/ceiling", "ceiling app")
    asyncio.run(drive(port, itertools.repeat(http_request("GET", "/ceiling", "none")), 2, 12, Result("warm-up")))
    return process, port


def pgbench(url: str, seconds: float, connections: int) -> float | None:
    """Transactions per second of bench/booking_transaction.pgbench on the benchmark's database."""
    binary = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    if binary is None:
        return None
    parsed = make_url(url)
    out = subprocess.run(
        [str(binary), "-n", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U",
         parsed.username or "postgres", "-c", str(connections), "-j", "2", "-T", str(max(1, int(seconds))),
         "-f", str(ROOT / "bench" / "booking_transaction.pgbench"), parsed.database or ""],
        capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    return None


def migrate(url: str, code: Path) -> None:
    """Migrate with the code under test (main's for a before-measurement)."""
    subprocess.run([sys.executable, "-c", "import sys; from booking_engine.store.migrate import upgrade; "
                    "upgrade(sys.argv[1])", url], cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, check=True)


def run(seconds: float, connections: int, code: Path) -> tuple[list[Result], float | None]:
    name = f"calbook_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    data_dir = Path(tempfile.mkdtemp(prefix="calbook-bench-"))
    process: subprocess.Popen[bytes] | None = None
    ceiling_process: subprocess.Popen[bytes] | None = None
    try:
        migrate(url, code)
        experts = seed(url)
        port = free_port()
        process = start_server(url, port, data_dir, code)
        settings = Settings(jwt_secret=SECRET, data_dir=data_dir)
        reader_token = mint_token("bench-reader", settings)
        tomorrow_day = (datetime.now(UTC) + timedelta(days=1)).date()
        tomorrow = tomorrow_day.isoformat()
        slots_path = f"/v1/experts/{experts[0]}/slots?date={tomorrow}&duration=60"
        slots_request = http_request("GET", slots_path, reader_token)
        size = len(httpx.get(f"http://127.0.0.1:{port}{slots_path}",
                             headers={"Authorization": f"Bearer {reader_token}"}).content)
        ceiling_process, ceiling_port = start_ceiling(size)
        ceiling_request = http_request("GET", "/ceiling", "none")

        def timed(label: str, request: bytes | Iterator[bytes]) -> Result:
            """The endpoint, right after the ceiling on the same load generator: the machine's load
            drifts (other work shares it), so each ratio is taken against its neighbour."""
            result = Result(label)
            result.ceiling = Result("ceiling")
            asyncio.run(drive(ceiling_port, itertools.repeat(ceiling_request), seconds, connections, result.ceiling))
            requests = itertools.repeat(request) if isinstance(request, bytes) else request
            assert process is not None
            cpu_before = tree_cpu_seconds(process.pid)
            asyncio.run(drive(port, requests, seconds, connections, result))
            result.server_cpu = tree_cpu_seconds(process.pid) - cpu_before
            return result

        # Warm up: connections, worker imports, database pools.
        asyncio.run(drive(port, itertools.repeat(slots_request), 2, connections, Result("warm-up")))
        results = [timed("GET .../slots", slots_request)]
        month = tomorrow_day.strftime("%Y-%m")
        results.append(timed("GET .../calendar (month)",
                             http_request("GET", f"/v1/experts/{experts[0]}/calendar?month={month}", reader_token)))
        tag = httpx.get(f"http://127.0.0.1:{port}{slots_path}",
                        headers={"Authorization": f"Bearer {reader_token}"}).headers.get("etag")
        if tag:
            conditional = http_request("GET", slots_path, reader_token, headers=(f"If-None-Match: {tag}",))
            results.append(timed("GET .../slots (304)", conditional))
        frm = f"{tomorrow}T00:00:00Z"
        to = (tomorrow_day + timedelta(days=7)).isoformat() + "T00:00:00Z"
        results.append(timed("GET .../busy",
                             http_request("GET", f"/v1/experts/{experts[0]}/busy?from={frm}&to={to}", reader_token)))
        # Many different questions: every expert, every day of the window, two durations.
        varied = [http_request("GET", f"/v1/experts/{expert}/slots?date={tomorrow_day + timedelta(days=d)}"
                               f"&duration={minutes}", reader_token)
                  for d in range(DAYS - 2) for expert in experts for minutes in (60, 120)]
        results.append(timed(f"GET .../slots ({len(varied)} keys)", itertools.cycle(varied)))
        # The computation itself, every time: the same server with the answer cache off.
        stop(process)
        port = free_port()
        process = start_server(url, port, data_dir, code, CALBOOK_ANSWER_CACHE_ENTRIES="0")
        asyncio.run(drive(port, itertools.repeat(slots_request), 2, connections, Result("warm-up")))
        results.append(timed("GET .../slots (cache off)", slots_request))

        first_day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        tokens = [mint_token(f"bench-user-{i}", settings) for i in range(50)]

        def bookings() -> Iterator[bytes]:
            users = itertools.cycle(tokens)
            for hour in range((DAYS - 2) * 24):
                start = (first_day + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")
                for expert in experts:
                    body = json.dumps({"expertId": expert, "startTime": start, "durationMinutes": 60,
                                       "type": "video_call"}).encode()
                    yield http_request("POST", "/v1/bookings", next(users), body)

        created = Result("POST /v1/bookings")
        cpu_before = tree_cpu_seconds(process.pid)
        asyncio.run(drive(port, bookings(), seconds, connections, created))
        created.server_cpu = tree_cpu_seconds(process.pid) - cpu_before
        results.append(created)
        stop(process)
        process = None
        return results, pgbench(url, seconds, connections)
    finally:
        stop(process)
        stop(ceiling_process)
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def rate(result: Result) -> float:
    return len(result.latencies) / result.seconds if result.seconds else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--connections", type=int, default=12, help="concurrent keep-alive connections")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose server to measure (e.g. /work/main for a before-measurement)")
    args = parser.parse_args()
    load = os.getloadavg()
    results, tps = run(args.seconds, args.connections, args.code.resolve())
    print(f"calbook api --workers 2 on PostgreSQL ({args.code}); {args.connections} connections, "
          f"{args.seconds:.0f} s each; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for result in results:
        ceiling = rate(result.ceiling) if result.ceiling else 0.0
        ratio = f"ceiling {ceiling:7.1f} req/s   ratio {rate(result) / ceiling:.3f}" if ceiling else ""
        print(f"{result.report()}   {ratio}")
    if tps:
        print(f"pgbench booking_transaction.pgbench: {tps:.1f} tps; POST /v1/bookings at "
              f"{rate(results[-1]) / tps:.3f} of it")
    ok = all(status < 500 for result in results for status in result.statuses)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
