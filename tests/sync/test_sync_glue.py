"""``worker.calendar.sync`` against a real Radicale, in process, on SQLite and PostgreSQL.

Covers what the unit tests of the connector cannot: the cursor round-trips through the
store, the lease keeps one sync per connection, failures land on the connection's status
without touching the blocks already imported, and conflicts are flagged after a sync.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.model import AvailabilitySettings
from booking_engine.services import bookings, calendar_sync, connections
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, calendar_sync_state
from config.settings import Settings
from connectors.base import TransientError
from tests.support.caldav import Direct
from tests.support.caldav_servers import Fault, FaultProxy, free_port
from tests.support.sync import EXPERT, USER, blocks, connect, day, event_text, outbox_types, spans
from worker import wiring


def _status(store: Store, connection_id: str) -> tuple[str, str | None]:
    with store.read() as conn:
        row = conn.execute(select(calendar_connections.c.status, calendar_connections.c.last_error)
                           .where(calendar_connections.c.id == connection_id)).one()
    return row[0], row[1]


def test_first_sync_imports_busy_time_and_saves_the_cursor(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    direct.put(calendar_path + "b.ics", event_text("b", day(2, 9), day(2, 10, 30)))
    direct.put(calendar_path + "free.ics", event_text("free", day(3, 9), day(3, 10), "TRANSP:TRANSPARENT"))
    connection_id = connect(store, calendar_url)

    outcome = wiring.sync_connection(store, connection_id, Settings())

    assert outcome.status == "active" and outcome.calendars == 1
    assert spans(store, connection_id) == [(day(1, 13), day(1, 14)), (day(2, 9), day(2, 10, 30))]
    assert calendar_sync.get_cursor(store, connection_id, calendar_url)["sync_token"]
    got = connections.get_connection(store, EXPERT, connection_id)
    assert got.status == "active" and got.last_synced_at is not None and got.last_error is None
    from booking_engine.services.availability import get_busy

    assert get_busy(store, EXPERT, day(1), day(3)) == [(day(1, 13), day(1, 14)), (day(2, 9), day(2, 10, 30))]


def test_incremental_sync_fetches_only_the_change(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    for i in range(20):
        direct.put(calendar_path + f"e{i}.ics", event_text(f"e{i}", day(1 + i, 9), day(1 + i, 10)))
    connection_id = connect(store, calendar_url)
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    assert len(blocks(store, connection_id)) == 20

    direct.put(calendar_path + "e3.ics", event_text("e3", day(4, 15), day(4, 16)))
    direct.delete(calendar_path + "e5.ics")
    proxy.seen.clear()
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"

    # The ctag (it moved), one sync-collection REPORT and one multiget of the single changed object.
    reports = [s for s in proxy.seen if s.method == "REPORT"]
    assert len(reports) == 2, [(s.method, s.path) for s in proxy.seen]
    assert [s.method for s in proxy.seen] == ["PROPFIND", "REPORT", "REPORT"]
    assert b"e3.ics" in reports[1].body and b"e4.ics" not in reports[1].body
    got = {ext.rsplit("/", 1)[-1]: (s, e) for ext, s, e in blocks(store, connection_id)}
    assert got["e3.ics"] == (day(4, 15), day(4, 16))
    assert "e5.ics" not in got and len(got) == 19


def test_invalid_sync_token_resyncs_to_the_same_state(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    wiring.sync_connection(store, connection_id, Settings())
    before = spans(store, connection_id)
    with store.write() as conn:  # the server forgot our token
        conn.execute(calendar_sync_state.update().values(
            cursor={**calendar_sync.get_cursor(store, connection_id, calendar_url), "sync_token": "http://x/gone"}))
    direct.put(calendar_path + "b.ics", event_text("b", day(2, 13), day(2, 14)))
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    assert spans(store, connection_id) == [*before, (day(2, 13), day(2, 14))]


def test_one_sync_per_connection_at_a_time(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    inside, release = threading.Event(), threading.Event()

    def hold(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        inside.set()
        release.wait(30)
        return body

    proxy.response_hook = hold
    results: list[str] = []
    settings = Settings()
    first = threading.Thread(
        target=lambda: results.append(wiring.sync_connection(store, connection_id, settings).status))
    first.start()
    try:
        assert inside.wait(30), "the first sync never reached the server"
        assert wiring.sync_connection(store, connection_id, Settings()).status == "locked"
    finally:
        release.set()
        proxy.response_hook = None
        first.join(60)
    assert results == ["active"]
    assert spans(store, connection_id) == [(day(1, 13), day(1, 14))]
    # The lease is released: the next sync runs.
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"


@pytest.mark.parametrize(("status", "expected", "raises"), [
    (503, "error", True), (500, "error", True), (401, "reauth_required", False),
])
def test_server_failures_set_the_status_and_keep_the_blocks(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str, status: int, expected: str, raises: bool,
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    wiring.sync_connection(store, connection_id, Settings())
    before = spans(store, connection_id)
    direct.put(calendar_path + "b.ics", event_text("b", day(2, 13), day(2, 14)))
    proxy.faults.append(Fault("REPORT", status, headers={"WWW-Authenticate": 'Basic realm="r"'}))

    if raises:  # transient: the task retries it with backoff
        with pytest.raises(TransientError):
            wiring.sync_connection(store, connection_id, Settings())
    else:
        assert wiring.sync_connection(store, connection_id, Settings()).status == expected
    got_status, error = _status(store, connection_id)
    assert got_status == expected and error and "s3cret" not in error
    assert spans(store, connection_id) == before
    if expected == "reauth_required":
        assert outbox_types(store).count("connection.reauth_required") == 1
        assert wiring.sync_connection(store, connection_id, Settings()).status == "skipped"  # waits for the expert
        assert connection_id not in connections.due_connections(store, now=utcnow() + timedelta(days=1))
    else:
        proxy.faults.clear()  # the retry succeeds and picks up what changed meanwhile
        # The connection backs off: not due at once, due again within the first backoff (60 s at most).
        assert connection_id not in connections.due_connections(store)
        assert connection_id in connections.due_connections(store, now=utcnow() + timedelta(seconds=61))
        assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
        assert _status(store, connection_id) == ("active", None)
        assert spans(store, connection_id) == [*before, (day(2, 13), day(2, 14))]


def test_server_down_is_transient_and_keeps_the_blocks(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, radicale: object,
) -> None:
    own = FaultProxy(direct.port)  # a server of our own to take down
    own.start()
    url = own.url.rstrip("/") + calendar_path
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, url)
    wiring.sync_connection(store, connection_id, Settings())
    own.stop()
    with pytest.raises(TransientError):
        wiring.sync_connection(store, connection_id, Settings())
    status, error = _status(store, connection_id)
    assert status == "error" and error.startswith("temporary")
    assert spans(store, connection_id) == [(day(1, 13), day(1, 14))]
    assert free_port()  # nothing leaked


def test_sync_flags_bookings_that_now_conflict(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    booking = bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call")
    bookings.confirm_booking(store, EXPERT, booking.id)
    other = bookings.create_booking(store, USER, EXPERT, day(1, 14), 60, "video_call")
    connection_id = connect(store, calendar_url)
    wiring.sync_connection(store, connection_id, Settings())
    assert "booking.conflict" not in outbox_types(store)

    direct.put(calendar_path + "clash.ics", event_text("clash", day(1, 10, 30), day(1, 11, 30)))
    direct.put(calendar_path + "near.ics", event_text("near", day(1, 15, 20), day(1, 16)))  # past the buffer
    outcome = wiring.sync_connection(store, connection_id, Settings())

    assert outcome.flagged == [booking.id]
    assert bookings.get_booking(store, EXPERT, booking.id).has_conflict is True
    assert bookings.get_booking(store, EXPERT, booking.id).status.value == "confirmed"  # never cancelled
    assert bookings.get_booking(store, EXPERT, other.id).has_conflict is False
    assert outbox_types(store).count("booking.conflict") == 1
    direct.put(calendar_path + "near.ics", event_text("near", day(1, 15, 10), day(1, 16)))  # inside the 15 min buffer
    assert wiring.sync_connection(store, connection_id, Settings()).flagged == [other.id]
    # A later sync does not notify again; once the clash goes, the flag goes quietly.
    assert wiring.sync_connection(store, connection_id, Settings()).flagged == []
    direct.delete(calendar_path + "clash.ics")
    wiring.sync_connection(store, connection_id, Settings())
    assert bookings.get_booking(store, EXPERT, booking.id).has_conflict is False
    assert outbox_types(store).count("booking.conflict") == 2


def test_disconnect_drops_blocks_at_once_and_sync_stops(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    wiring.sync_connection(store, connection_id, Settings())
    connections.disconnect(store, EXPERT, connection_id)
    assert blocks(store) == []
    assert wiring.sync_connection(store, connection_id, Settings()).status in ("skipped", "locked")
    assert blocks(store) == []
    assert connection_id not in connections.due_connections(store, now=utcnow() + timedelta(days=1))
