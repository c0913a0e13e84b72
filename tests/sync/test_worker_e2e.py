"""End to end with a real ``celery worker`` process (beat embedded) and a real Radicale.

The API (in this process) connects a CalDAV account and asks for a sync; the worker imports
the busy time, pushes the confirmed booking's event, moves it on reschedule, deletes it on
cancel. Once on the embedded broker with SQLite, once on Redis with PostgreSQL (where the
server also fails twice first, so the sync task has to retry with backoff).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox
from booking_engine.store.worker_tables import outbox_handler_runs
from tests.support.api import auth, make_settings
from tests.support.caldav import Direct
from tests.support.caldav_servers import Fault, FaultProxy
from tests.support.db import truncate_all
from tests.support.factories import publish
from tests.support.sync import EXPERT, USER, blocks, day, event_text
from tests.support.worker import ENCRYPTION_KEY, WorkerProcess, wait_until

pytestmark = pytest.mark.slow
BASE = "/v1/calendar-connections"


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[str]:
    url = redis_url  # the run's own Redis database (CALBOOK_TEST_REDIS_URL)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _events(direct: Direct, calendar_path: str) -> dict[str, icalendar.Event]:
    status, text = direct.get(calendar_path)
    assert status == 200
    return {str(e["UID"]): e for e in icalendar.Calendar.from_ical(text).walk("VEVENT")}


def _last_synced(store: Store, connection_id: str) -> Any:
    with store.read() as conn:
        return conn.execute(select(calendar_connections.c.last_synced_at, calendar_connections.c.status)
                            .where(calendar_connections.c.id == connection_id)).one()


def _redeliver(store: Store, event_type: str, booking_id: str) -> None:
    """Make the worker dispatch this outbox event again, as after a lost acknowledgement."""
    with store.write() as conn:
        row = conn.execute(select(outbox.c.id, outbox.c.event_id).where(
            outbox.c.event_type == event_type, outbox.c.aggregate_id == booking_id)).one()
        conn.execute(outbox_handler_runs.delete().where(outbox_handler_runs.c.event_id == row[1]))
        conn.execute(update(outbox).where(outbox.c.id == row[0]).values(dispatched_at=None, claimed_until=None))


def _dispatched(store: Store, event_type: str, booking_id: str) -> bool:
    with store.read() as conn:
        return conn.execute(select(outbox.c.dispatched_at).where(
            outbox.c.event_type == event_type, outbox.c.aggregate_id == booking_id)).scalar() is not None


def run_flow(store: Store, database_url: str, broker_url: str, tmp_path: Path, direct: Direct,
             calendar_path: str, calendar_url: str, start: Callable[..., WorkerProcess]) -> None:
    publish(store, EXPERT, now=datetime.now().astimezone())
    direct.put(calendar_path + "dentist.ics", event_text("dentist", day(1, 13), day(1, 14)))
    settings = make_settings(tmp_path / "api", encryption_key=ENCRYPTION_KEY, broker_url=broker_url)
    worker = start({"CALBOOK_DATABASE_URL": database_url, "CALBOOK_BROKER_URL": broker_url,
                    "CALBOOK_DATA_DIR": str(tmp_path / "worker")})
    try:
        with TestClient(create_app(store, settings)) as client:
            body = {"url": calendar_url, "username": "alice", "password": "s3cret-pw"}
            response = client.post(f"{BASE}/caldav", json=body, headers=auth(EXPERT))
            assert response.status_code == 201, response.text
            connection_id = response.json()["id"]
            assert client.post(f"{BASE}/{connection_id}/sync", headers=auth(EXPERT)).status_code == 202

            wait_until(lambda: blocks(store, connection_id) and _last_synced(store, connection_id)[1] == "active",
                       90, "the worker to import the busy time")
            busy = client.get(f"/v1/experts/{EXPERT}/busy", params={"from": z(day(1)), "to": z(day(2))},
                              headers=auth(USER))
            assert busy.json() == {"items": [{"start": z(day(1, 13)), "end": z(day(1, 14))}]}

            created = client.post("/v1/bookings", headers=auth(USER), json={
                "expertId": EXPERT, "startTime": z(day(1, 10)), "durationMinutes": 60, "type": "video_call"})
            assert created.status_code == 201, created.text
            booking_id = created.json()["id"]
            assert client.post(f"/v1/bookings/{booking_id}/confirm", headers=auth(EXPERT)).status_code == 200
            uid = f"{booking_id}@calbook"
            wait_until(lambda: uid in _events(direct, calendar_path), 90, "the worker to push the event")
            first = _events(direct, calendar_path)[uid]
            assert first.decoded("DTSTART") == day(1, 10)

            _redeliver(store, "booking.confirmed", booking_id)  # a duplicate delivery
            wait_until(lambda: _dispatched(store, "booking.confirmed", booking_id), 90, "the redelivery")
            assert [k for k in _events(direct, calendar_path) if k.endswith("@calbook")] == [uid]

            moved = client.post(f"/v1/bookings/{booking_id}/reschedule", headers=auth(EXPERT),
                                json={"newStartTime": z(day(2, 11))})
            assert moved.status_code == 200, moved.text
            wait_until(lambda: _events(direct, calendar_path)[uid].decoded("DTSTART") == day(2, 11), 90,
                       "the worker to move the event")
            again = _events(direct, calendar_path)[uid]
            assert int(again["SEQUENCE"]) > int(first.get("SEQUENCE", 0))
            assert [k for k in _events(direct, calendar_path) if k.endswith("@calbook")] == [uid]

            synced = _last_synced(store, connection_id)[0]
            assert client.post(f"{BASE}/{connection_id}/sync", headers=auth(EXPERT)).status_code == 202
            wait_until(lambda: _last_synced(store, connection_id)[0] != synced, 90, "a second sync")
            assert [(s, e) for _, s, e in blocks(store, connection_id)] == [(day(1, 13), day(1, 14))]

            cancelled = client.post(f"/v1/bookings/{booking_id}/cancel", headers=auth(USER),
                                    json={"reason": "plans changed"})
            assert cancelled.status_code == 200, cancelled.text
            wait_until(lambda: uid not in _events(direct, calendar_path), 90, "the worker to delete the event")
    except AssertionError:
        print(worker.log_text()[-6000:])
        raise
    assert "s3cret-pw" not in worker.log_text()


def test_embedded_broker_sqlite(
    sqlite_url: str, tmp_path: Path, direct: Direct, calendar_path: str, calendar_url: str,
    start_worker: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    store = Store.from_url(sqlite_url)
    try:
        run_flow(store, sqlite_url, f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}", tmp_path, direct,
                 calendar_path, calendar_url, start_worker)
    finally:
        store.dispose()


def test_redis_postgres_with_a_flaky_server(
    pg_url: str, pg_store: Store, redis_broker: str, tmp_path: Path, direct: Direct, proxy: FaultProxy,
    calendar_path: str, calendar_url: str, start_worker: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    truncate_all(pg_store)
    proxy.faults.append(Fault("REPORT", 503, times=2))  # the first sync attempts fail: retried with backoff
    run_flow(pg_store, pg_url, redis_broker, tmp_path, direct, calendar_path, calendar_url, start_worker)
    assert sum(1 for s in proxy.seen if s.method == "REPORT" and s.status == 503) == 2
