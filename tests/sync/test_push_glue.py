"""``worker.calendar.push`` through the outbox, in process, against a real Radicale.

The outbox handler reads the booking's state at delivery time, so duplicates, retries and
late deliveries converge on one event per booking (or none, once cancelled).
"""

from __future__ import annotations

import threading

import icalendar
import pytest
from sqlalchemy import select, update

from booking_engine.model import AvailabilitySettings
from booking_engine.services import bookings, calendar_sync, connections
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox
from booking_engine.store.worker_tables import outbox_handler_runs
from config.settings import Settings
from tests.support.caldav import Direct
from tests.support.caldav_servers import Fault, FaultProxy
from tests.support.sync import EXPERT, USER, blocks, connect, day, outbox_types
from worker import outbox as outbox_module
from worker import wiring
from worker.calendar.push import push_booking
from worker.outbox import OutboxEvent


def push_to_calendars(store: Store, event: OutboxEvent) -> None:
    """The worker table's calendar-push handler."""
    wiring.outbox_handlers(Settings())["calendar-push"].run(store, event)


def handle(store: Store, event: OutboxEvent) -> outbox_module.Outcome:
    """One event through the worker's own handler table, as the dispatch task runs it."""
    settings = Settings()
    return outbox_module.handle(store, event, wiring.outbox_handlers(settings), settings=settings)


def _events(direct: Direct, calendar_path: str) -> dict[str, icalendar.Event]:
    """UID -> VEVENT of every resource in the calendar (read straight from Radicale)."""
    status, text = direct.get(calendar_path)
    assert status == 200
    found = {}
    for component in icalendar.Calendar.from_ical(text).walk("VEVENT"):
        found[str(component["UID"])] = component
    return found


def _outbox_event(store: Store, event_type: str, aggregate_id: str) -> OutboxEvent:
    with store.read() as conn:
        row = conn.execute(select(outbox).where(outbox.c.event_type == event_type,
                                                outbox.c.aggregate_id == aggregate_id)
                           .order_by(outbox.c.id.desc())).mappings().first()
    assert row is not None, f"no {event_type} for {aggregate_id}"
    return OutboxEvent(row["id"], row["event_id"], row["event_type"], row["aggregate_id"], dict(row["payload"]),
                       row["created_at"], row["attempts"])


def test_confirm_reschedule_cancel_moves_one_event(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connection_id = connect(store, calendar_url)
    booking = bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call", topic="Taxes")
    assert push_booking(store, booking.id, settings=Settings()) == 0  # pending: nothing written
    assert _events(direct, calendar_path) == {}

    bookings.confirm_booking(store, EXPERT, booking.id)
    confirmed = _outbox_event(store, "booking.confirmed", booking.id)
    push_to_calendars(store, confirmed)
    push_to_calendars(store, confirmed)  # a duplicate delivery
    handle(store, confirmed)  # and through the outbox's own handler table
    events = _events(direct, calendar_path)
    uid = f"{booking.id}@calbook"
    assert list(events) == [uid]
    assert events[uid].decoded("DTSTART") == day(1, 10)
    first_sequence = int(events[uid].get("SEQUENCE", 0))
    ref = calendar_sync.get_event_ref(store, booking.id, connection_id)
    assert ref is not None and ref.ref.endswith(f"{booking.id}.ics") and ref.etag

    bookings.reschedule_booking(store, EXPERT, booking.id, day(2, 11))  # the expert's: stays confirmed
    push_to_calendars(store, _outbox_event(store, "booking.rescheduled", booking.id))
    events = _events(direct, calendar_path)
    assert list(events) == [uid]
    assert events[uid].decoded("DTSTART") == day(2, 11)
    assert int(events[uid]["SEQUENCE"]) > first_sequence

    # calbook's own event never comes back as busy time.
    wiring.sync_connection(store, connection_id, Settings())
    assert blocks(store, connection_id) == []

    bookings.cancel_booking(store, USER, booking.id, "plans changed")
    cancelled = _outbox_event(store, "booking.cancelled", booking.id)
    push_to_calendars(store, cancelled)
    push_to_calendars(store, cancelled)  # deleting twice is fine
    assert _events(direct, calendar_path) == {}
    assert calendar_sync.get_event_ref(store, booking.id, connection_id) is None
    # A late duplicate of the confirmation reads the fresh state: it does not resurrect the event.
    push_to_calendars(store, confirmed)
    assert _events(direct, calendar_path) == {}


def test_users_reschedule_removes_the_event_until_confirmed_again(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    push_booking(store, booking.id, settings=Settings())
    bookings.reschedule_booking(store, USER, booking.id, day(1, 13))  # back to pending
    push_booking(store, booking.id, settings=Settings())
    assert _events(direct, calendar_path) == {}
    bookings.confirm_booking(store, EXPERT, booking.id)
    push_booking(store, booking.id, settings=Settings())
    events = _events(direct, calendar_path)
    assert [e.decoded("DTSTART") for e in events.values()] == [day(1, 13)]


def test_event_deleted_by_the_expert_is_written_again(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    push_booking(store, booking.id, settings=Settings())
    direct.delete(calendar_path + f"{booking.id}.ics")
    bookings.reschedule_booking(store, EXPERT, booking.id, day(1, 14))
    push_booking(store, booking.id, settings=Settings())
    assert [e.decoded("DTSTART") for e in _events(direct, calendar_path).values()] == [day(1, 14)]


@pytest.mark.parametrize(("status", "expected"), [(503, None), (401, "reauth_required")])
def test_push_failures(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str, status: int, expected: str | None,
) -> None:
    """Transient: the outbox retries the event later. Credentials refused: the expert is told, no retry."""
    connection_id = connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    proxy.faults.append(Fault("PUT", status, times=1))
    confirmed = _outbox_event(store, "booking.confirmed", booking.id)
    if expected is None:
        first = handle(store, confirmed)  # the outbox records the push's failure and retries it alone
        assert not first.finished and len(first.errors) == 1
        with store.write() as conn:  # the retry is due
            conn.execute(update(outbox_handler_runs).values(next_attempt_at=None))
        assert handle(store, confirmed).finished  # the retry
        assert len(_events(direct, calendar_path)) == 1
        assert connections.get_connection(store, EXPERT, connection_id).status == "active"
    else:
        handle(store, confirmed)
        assert _events(direct, calendar_path) == {}
        assert connections.get_connection(store, EXPERT, connection_id).status == expected
        assert "connection.reauth_required" in outbox_types(store)


def test_outbox_drain_runs_the_push(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    wiring.drain_outbox(store, Settings(), budget_seconds=10)
    assert list(_events(direct, calendar_path)) == [f"{booking.id}@calbook"]
    with store.write() as conn:  # redelivery of everything, as after a lost acknowledgement
        conn.execute(update(outbox).values(dispatched_at=None, claimed_until=None))
        from booking_engine.store.worker_tables import outbox_handler_runs

        conn.execute(outbox_handler_runs.delete())
    wiring.drain_outbox(store, Settings(), budget_seconds=10)
    assert list(_events(direct, calendar_path)) == [f"{booking.id}@calbook"]


def test_no_push_for_ics_or_connections_without_destination(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connection_id = connect(store, calendar_url)
    with store.write() as conn:
        conn.execute(update(calendar_connections).where(calendar_connections.c.id == connection_id)
                     .values(config={"url": calendar_url, "busyCalendars": [calendar_url],
                                     "destinationCalendar": None}))
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    assert push_booking(store, booking.id, settings=Settings()) == 0
    assert _events(direct, calendar_path) == {}


def test_a_sync_disconnected_while_it_ran_writes_nothing_back(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    connection_id = connect(store, calendar_url)
    connections.set_status(store, connection_id, "reauth_required", "password changed")
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    push_to_calendars(store, _outbox_event(store, "booking.confirmed", booking.id))
    connections.set_status(store, connection_id, "active")  # the event is now missing: a sync would write it
    inside, release = threading.Event(), threading.Event()

    def hold(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        inside.set()
        release.wait(30)
        return body

    proxy.response_hook = hold
    results: list[int] = []
    sync = threading.Thread(target=lambda: results.append(
        wiring.sync_connection(store, connection_id, Settings()).backfilled))
    sync.start()
    try:
        assert inside.wait(30)
        connections.disconnect(store, EXPERT, connection_id)  # the expert disconnects while it pulls
    finally:
        release.set()
        proxy.response_hook = None
        sync.join(60)
    assert results == [0]
    assert _events(direct, calendar_path) == {}  # nothing written to a calendar the expert took away


def test_sync_writes_events_missed_while_the_connection_needed_reauth(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    connection_id = connect(store, calendar_url)
    connections.set_status(store, connection_id, "reauth_required", "password changed")
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    push_to_calendars(store, _outbox_event(store, "booking.confirmed", booking.id))
    assert _events(direct, calendar_path) == {}  # nowhere to write while the credentials are refused

    # The expert fixes the connection (here: the status); the next sync writes the missing event.
    connections.set_status(store, connection_id, "active")
    outcome = wiring.sync_connection(store, connection_id, Settings())
    assert outcome.backfilled == 1
    assert list(_events(direct, calendar_path)) == [f"{booking.id}@calbook"]
    assert wiring.sync_connection(store, connection_id, Settings()).backfilled == 0  # recorded: not written twice
    assert blocks(store, connection_id) == []  # and still never imported as busy time


REFUSED = (b'<?xml version="1.0"?><D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
           b"<C:valid-calendar-data/></D:error>")


def test_a_refused_event_is_recorded_on_the_booking_and_the_connection_stays_active(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    """A 403 with a ``DAV:error`` body is that booking's problem, not lost credentials: the
    connection keeps syncing, the reason is kept for the booking, and a later push that the
    server accepts clears it."""
    connection_id = connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    proxy.faults.append(Fault("PUT", 403, body=REFUSED))
    handle(store, _outbox_event(store, "booking.confirmed", booking.id))  # no retry storm: handled

    connection = connections.get_connection(store, EXPERT, connection_id)
    assert connection.status == "active" and not connection.last_error
    recorded = calendar_sync.get_push_error(store, booking.id, connection_id)
    assert recorded is not None and "valid-calendar-data" in recorded["error"]
    assert "connection.reauth_required" not in outbox_types(store)
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"  # and syncing goes on

    proxy.faults.clear()
    wiring.sync_connection(store, connection_id, Settings(), force_reconcile=True)  # the sync's backfill tries again
    assert list(_events(direct, calendar_path)) == [f"{booking.id}@calbook"]
    assert calendar_sync.get_push_error(store, booking.id, connection_id) is None


def test_an_event_the_expert_moved_stays_there_through_reschedule_sync_and_cancel(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    """The issue's reproduction: book and confirm, move the event to another calendar in the
    expert's client, reschedule. One event, in the calendar the expert chose, at the new time."""
    connection_id = connect(store, calendar_url)
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
    push_booking(store, booking.id, settings=Settings())
    other = direct.make_calendar(f"private-{booking.id[:8]}")
    _, body = direct.get(calendar_path + f"{booking.id}.ics")
    direct.delete(calendar_path + f"{booking.id}.ics")
    direct.put(other + "moved.ics", body)

    bookings.reschedule_booking(store, EXPERT, booking.id, day(1, 14))
    push_booking(store, booking.id, settings=Settings())
    wiring.sync_connection(store, connection_id, Settings())  # its backfill must not move the event back

    assert _events(direct, calendar_path) == {}
    (moved,) = _events(direct, other).values()
    assert moved.decoded("DTSTART") == day(1, 14) and int(moved["SEQUENCE"]) >= 1
    assert connections.get_connection(store, EXPERT, connection_id).status == "active"

    bookings.cancel_booking(store, EXPERT, booking.id, "cannot make it")
    push_booking(store, booking.id, settings=Settings())
    assert _events(direct, other) == {} and _events(direct, calendar_path) == {}
