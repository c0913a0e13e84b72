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

Targets (2-core machine): slots >= 500 req/s with p99 < 50 ms; bookings >= 200 req/s, no 5xx.

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
from sqlalchemy import create_engine, text  # noqa: E402

from api.auth import mint_token  # noqa: E402
from booking_engine.services import availability  # noqa: E402
from booking_engine.store.db import Store  # noqa: E402
from booking_engine.store.migrate import upgrade  # noqa: E402
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

    def report(self) -> str:
        count = len(self.latencies)
        if not count:
            return f"{self.name}: no requests completed"
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(count - 1, int(count * 0.99))] * 1000
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        return (f"{self.name:<28} {count / self.seconds:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
                f"requests {count:6d}   5xx {server_errors}   statuses {dict(sorted(self.statuses.items()))}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(method: str, path: str, token: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


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
                status = await read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.seconds = time.perf_counter() - began


def seed(url: str) -> list[str]:
    upgrade(url)
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


def start_server(url: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALBOOK_DATABASE_URL": url, "CALBOOK_JWT_SECRET": SECRET,
           "CALBOOK_DATA_DIR": str(data_dir), "CALBOOK_LOG_LEVEL": "WARNING"}
    calbook = Path(sys.executable).with_name("calbook")
    command = [str(calbook)] if calbook.exists() else [sys.executable, "-m", "config.cli"]
    process = subprocess.Popen([*command, "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                               cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("calbook api exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("calbook api did not start within 60 s")


def run(seconds: float, connections: int) -> list[Result]:
    name = f"calbook_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    data_dir = Path(tempfile.mkdtemp(prefix="calbook-bench-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        experts = seed(url)
        port = free_port()
        process = start_server(url, port, data_dir)
        settings = Settings(jwt_secret=SECRET, data_dir=data_dir)
        reader_token = mint_token("bench-reader", settings)
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        slots_request = http_request("GET", f"/v1/experts/{experts[0]}/slots?date={tomorrow}&duration=60",
                                     reader_token)

        # Warm up: connections, worker imports, database pools.
        asyncio.run(drive(port, itertools.repeat(slots_request), 2, connections, Result("warm-up")))
        slots = Result("GET .../slots")
        asyncio.run(drive(port, itertools.repeat(slots_request), seconds, connections, slots))

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
        asyncio.run(drive(port, bookings(), seconds, connections, created))
        return [slots, created]
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--connections", type=int, default=12, help="concurrent keep-alive connections")
    args = parser.parse_args()
    results = run(args.seconds, args.connections)
    print(f"calbook api --workers 2 on PostgreSQL; {args.connections} connections, {args.seconds:.0f} s each")
    for result in results:
        print(result.report())
    slots, created = results
    ok = all(status < 500 for status in [*slots.statuses, *created.statuses])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
