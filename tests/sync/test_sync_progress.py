"""Sync progress (docs/sync.md#sync-progress): a running sync is visible on its connection, logged now
and then, counted and timed by provider and result; nothing of it shows once the sync is over.

The sync is the worker's own code (``worker.calendar.sync``) on a real ICS feed over HTTP that
holds its answer until the test has looked at the connection through the API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import update

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.services import connections, sync_progress, sync_runs
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections
from booking_engine.sync_progress import SyncPhase
from config.settings import Settings
from connectors.secrets import encrypt_json
from tests.support.api import EXPERT, auth, make_settings
from tests.support.feed_server import serve_feed
from tests.support.sync import event_text
from tests.support.worker import ENCRYPTION_KEY, wait_until
from worker import wiring
from worker.calendar.progress import SAVING_SHOWN, ProgressTracker


@pytest.fixture
def slow_feed() -> Iterator[tuple[str, threading.Event]]:
    """A feed with two events whose answer waits for ``release``."""
    release = threading.Event()
    start = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = (event_text("a@example.org", start, start + timedelta(hours=1))  # a feed of two VCALENDARs
            + event_text("b@example.org", start + timedelta(hours=3), start + timedelta(hours=4))).encode()
    with serve_feed(body, hold=release) as url:
        yield url, release


def _counted(provider: str, result: str) -> float:
    return REGISTRY.get_sample_value("calbook_calendar_syncs_total", {"provider": provider, "result": result}) or 0.0


def test_a_running_sync_shows_its_progress_and_is_counted(
    store: Store, tmp_path: Path, slow_feed: tuple[str, threading.Event], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_url, release = slow_feed
    monkeypatch.setenv("CALBOOK_WORKER_SYNC_PROGRESS_LOG_SECONDS", "0")  # log every step
    created = connections.create_connection(
        store, EXPERT, EXPERT, "ics", account="127.0.0.1/team.ics", busy_calendars=[], destination_calendar=None,
        credentials=encrypt_json({"url": feed_url}, ENCRYPTION_KEY), extra_config={"url": feed_url},
    )
    app = create_app(store, make_settings(tmp_path, encryption_key=ENCRYPTION_KEY))
    synced_before = _counted("ics", "active")
    done: dict[str, Any] = {}
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="worker.calendar.progress"):
        def read() -> dict[str, Any]:
            answer = client.get(f"/v1/calendar-connections/{created.id}", headers=auth(EXPERT))
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        assert read()["syncProgress"] is None
        settings = Settings()
        worker = threading.Thread(
            target=lambda: done.update(outcome=wiring.sync_connection(store, created.id, settings)))
        worker.start()
        try:
            running = wait_until(lambda: (read()["syncProgress"] or {}).get("phase") == "fetching" and read(), 30,
                                 "the sync to be fetching the feed")
        finally:
            release.set()
            worker.join(30)
        progress = running["syncProgress"]
        assert progress["calendarsDone"] == 0 and progress["calendarsTotal"] == 1 and progress["itemsImported"] == 0
        assert progress["startedAt"].endswith("Z") and progress["updatedAt"] >= progress["startedAt"]
        after = read()
    assert done["outcome"].status == "active" and done["outcome"].blocks == 2
    assert after["syncProgress"] is None and after["lastSyncedAt"] is not None
    lines = [r for r in caplog.records if r.getMessage() == "calendar sync progress"]
    assert [(r.phase, r.calendars) for r in lines] == [("fetching", "0/1"), ("saving", "0/1")]
    assert all(r.connection_id == created.id and r.provider == "ics" for r in lines)
    assert _counted("ics", "active") == synced_before + 1
    assert (REGISTRY.get_sample_value("calbook_calendar_sync_duration_seconds_count", {"provider": "ics"}) or 0) >= 1


def test_progress_counts_items_per_calendar_and_a_dead_sync_shows_none(store: Store, tmp_path: Path) -> None:
    created = connections.create_connection(
        store, EXPERT, EXPERT, "caldav", account="someone", credentials=None, busy_calendars=["a", "b", "c"],
        destination_calendar=None,
    )
    now = utcnow()
    started = sync_runs.start_sync(store, created.id, timedelta(minutes=10), now=now)  # holds the lease
    assert started is not None and started.phase == SyncPhase.FETCHING
    shown = connections.get_connection(store, EXPERT, created.id).as_dict()["syncProgress"]
    assert shown["phase"] == "fetching" and shown["calendarsDone"] == 0 and shown["calendarsTotal"] == 3
    sync_progress.report(store, created.id, SyncPhase.FETCHING, 1, 3, 120, now=now + timedelta(seconds=5))
    shown = connections.get_connection(store, EXPERT, created.id).as_dict()["syncProgress"]
    assert shown["phase"] == "fetching" and shown["calendarsDone"] == 1 and shown["calendarsTotal"] == 3
    assert shown["itemsImported"] == 120
    with store.write() as conn:  # the worker died: its lease ran out, its progress is not the truth any more
        conn.execute(update(calendar_connections).where(calendar_connections.c.id == created.id)
                     .values(sync_lock_until=now - timedelta(seconds=1)))
    assert connections.get_connection(store, EXPERT, created.id).sync_progress is None


def test_the_schema_lists_statuses_and_phases(tmp_path: Path, store: Store) -> None:
    schema = create_app(store, make_settings(tmp_path)).openapi()["components"]["schemas"]
    assert schema["CalendarConnectionOut"]["properties"]["status"]["enum"] == [
        "active", "error", "reauth_required", "disconnected"]
    assert schema["SyncProgressOut"]["properties"]["phase"]["enum"] == ["listing", "fetching", "saving"]




def test_a_step_is_stored_only_when_a_reader_could_see_it(store: Store) -> None:
    created = connections.create_connection(
        store, EXPERT, EXPERT, "caldav", account="someone", credentials=None, busy_calendars=["a", "b"],
        destination_calendar=None,
    )
    started = sync_runs.start_sync(store, created.id, timedelta(minutes=10))
    assert started is not None
    tracker = ProgressTracker(store, created.id, "caldav", 60, (started.phase, 0, 2, 0))

    def shown() -> tuple[str, int]:
        progress = connections.get_connection(store, EXPERT, created.id).as_dict()["syncProgress"]
        return progress["phase"], progress["calendarsDone"]

    tracker.step(SyncPhase.FETCHING, 0, 2, 0)  # what the start stored already
    tracker.step(SyncPhase.SAVING, 0, 2, 0, pulled=SAVING_SHOWN - 1)  # over in milliseconds: not stored
    assert shown() == ("fetching", 0)
    tracker.step(SyncPhase.FETCHING, 1, 2, 10)  # another calendar: stored
    assert shown() == ("fetching", 1)
    tracker.step(SyncPhase.SAVING, 1, 2, 10, pulled=SAVING_SHOWN)  # a large save: stored
    assert shown() == ("saving", 1)
