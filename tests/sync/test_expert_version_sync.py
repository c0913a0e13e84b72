"""A CalDAV sync that writes busy blocks moves the expert's version: the slots' ETag and list change.

Through the real sync path (``worker.wiring.sync_connection`` against Radicale) and
the real app, on SQLite and PostgreSQL: a client holding the slots' ETag from before the
sync gets the new, booked answer after it, never a 304 (docs/api.md#conditional-requests).
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from booking_engine.store.repositories.expert_versions import get_version
from config.settings import Settings
from tests.support.api import auth, make_settings
from tests.support.caldav import Direct
from tests.support.sync import EXPERT, USER, connect, day, event_text
from worker import wiring


def test_sync_busy_blocks_change_the_etag_and_the_slots(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str,
    tmp_path: Path,
) -> None:
    connection_id = connect(store, calendar_url)
    query = {"date": day(2).date().isoformat(), "duration": 60}
    with TestClient(create_app(store, make_settings(tmp_path))) as client:
        url = f"/v1/experts/{EXPERT}/slots"
        before = client.get(url, params=query, headers=auth(USER))
        assert before.status_code == 200
        assert any(s["status"] == "available" for s in before.json()["slots"])
        with store.read() as conn:
            version = get_version(conn, EXPERT)

        direct.put(calendar_path + "all-day.ics", event_text("all-day", day(2, 0), day(3, 0)))
        assert wiring.sync_connection(store, connection_id, Settings()).status  # the sync_env settings == "active"

        with store.read() as conn:
            assert (get_version(conn, EXPERT) or 0) > (version or 0)
        after = client.get(url, params=query, headers={**auth(USER), "If-None-Match": before.headers["ETag"]})
        assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
        assert not any(s["status"] == "available" for s in after.json()["slots"])
