"""Through a real server: uvicorn on 127.0.0.1 (a free port) on the PostgreSQL test database.

50 concurrent ``POST /v1/bookings`` for one slot must give exactly one 201 and 409
``slot_unavailable`` for every other, and malformed requests of every kind must come back
as a 4xx problem document over a real socket (real Content-Length handling, real JSON
parsing, real uvicorn), never a 500 or a dropped connection.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from booking_engine.clock import utcnow
from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from tests.support.api import EXPERT, PROBLEM, SECRET, auth, booking_body, day_ahead
from tests.support.db import truncate_all
from tests.support.factories import publish

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    data_dir = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {
        **os.environ,
        "CALBOOK_DATABASE_URL": pg_url,
        "CALBOOK_JWT_SECRET": SECRET,
        "CALBOOK_DATA_DIR": str(data_dir),
        "CALBOOK_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        "CALBOOK_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"uvicorn did not start:\n{output}")
        time.sleep(0.1)
    store = Store.from_url(pg_url)
    try:
        yield base, store
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        store.dispose()


@pytest.fixture
def live(server: tuple[str, Store]) -> Iterator[str]:
    base, store = server
    truncate_all(store)
    publish(store, EXPERT, now=utcnow())
    yield base


def test_fifty_concurrent_bookings_for_one_slot(live: str, server: tuple[str, Store]) -> None:
    body = booking_body(day_ahead(2), hour=13)
    users = [f"racer-{i}" for i in range(50)]

    def attempt(user: str) -> httpx.Response:
        with httpx.Client(base_url=live, timeout=60) as client:
            return client.post("/v1/bookings", json=body, headers=auth(user))

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(attempt, users))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 49, statuses
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["code"] == "slot_unavailable"
    _, store = server
    with store.read() as conn:
        count = conn.execute(text("SELECT count(*) FROM bookings WHERE status IN ('pending', 'confirmed')")).scalar()
    assert count == 1


def test_malformed_requests_over_a_real_socket(live: str, server: tuple[str, Store]) -> None:
    headers = {**auth("someone"), "Content-Type": "application/json"}
    day = day_ahead(2).isoformat()
    slots = f"/v1/experts/{EXPERT}/slots"
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("POST", "/v1/bookings", {"content": b'{"expertId": "expert-1", '}),
        ("POST", "/v1/bookings", {"content": b"\x00\xff garbage"}),
        ("POST", "/v1/bookings", {"json": booking_body(durationMinutes="sixty")}),
        ("POST", "/v1/bookings", {"json": booking_body(expertId=["a"])}),
        ("POST", "/v1/bookings", {"json": booking_body(admin=True)}),
        ("POST", "/v1/bookings", {"json": booking_body(startTime=f"{day}T10:00:00")}),
        ("POST", "/v1/bookings", {"json": booking_body(notes="n" * 2_000_000)}),
        ("POST", "/v1/bookings", {"json": [booking_body()] * 3}),
        ("PUT", f"/v1/experts/{EXPERT}/exceptions/2031-02-29", {"json": {"type": "unavailable"}}),
        ("GET", slots, {"params": {"date": "2031-04-31", "duration": 60}}),
        ("GET", slots, {"params": {"date": day, "duration": "1e3"}}),
        ("GET", f"/v1/experts/{EXPERT}/calendar", {"params": {"month": "2031-13"}}),
        ("GET", f"/v1/experts/{EXPERT}/calendar", {"params": {"month": "31-1"}}),
        ("GET", f"/v1/experts/{EXPERT}/busy", {"params": {"from": f"{day}T00:00:00", "to": f"{day}T12:00:00"}}),
        ("GET", "/v1/bookings", {"params": {"cursor": "%%%"}}),
        ("GET", "/v1/no/such/thing", {}),
        ("PATCH", "/v1/bookings", {}),
    ]
    with httpx.Client(base_url=live, timeout=30) as client:
        for method, path, kwargs in cases:
            response = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
            assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
            assert response.headers["content-type"].startswith(PROBLEM), (path, response.headers)
            problem = response.json()
            assert problem["status"] == response.status_code and problem["code"] and problem["detail"], problem
        huge = client.post("/v1/bookings", headers=headers, content=b"{" + b" " * 3_000_000 + b"}")
        assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
        assert client.get("/readyz").status_code == 503  # no worker runs beside this API
        heartbeats.register(server[1], "celery@real-server/1", "celery@real-server", 1)
        assert client.get("/readyz").status_code == 200
