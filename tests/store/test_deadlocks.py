"""Transactions PostgreSQL aborts as deadlocks are run again (docs/lifecycle.md#no-double-booking).

Real threads on a real PostgreSQL: a deadlock is built on purpose, in the exclusion-constraint
check the issue saw it in, and the service must come out with the answer of a lost race (409
``slot_unavailable``) instead of the database error that used to be a 503.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from booking_engine.errors import SlotUnavailable
from booking_engine.model import BookingType
from booking_engine.services import bookings as bk
from booking_engine.services import users
from booking_engine.services.bookings import place_booking
from booking_engine.store.db import Store
from booking_engine.store.tables import bookings as bookings_table
from booking_engine.store.tables import users as users_table
from tests.support.db import truncate_all
from tests.support.factories import NOW, publish

TEN = datetime(2030, 3, 5, 10, 0, tzinfo=UTC)
TWO_PM = datetime(2030, 3, 5, 14, 0, tzinfo=UTC)


@pytest.fixture
def store(pg_store: Store) -> Store:
    truncate_all(pg_store)
    return pg_store


def test_a_deadlocked_transaction_is_run_again(store: Store) -> None:
    """Two transactions lock two rows in opposite order: PostgreSQL aborts one, which runs again."""
    for uid in ("a", "b"):
        users.update_profile(store, uid, display_name=uid, now=NOW)
    both_locked_one = threading.Barrier(2)
    runs: list[str] = []
    errors: list[BaseException] = []

    def lock(first: str, second: str) -> None:
        def work(conn) -> None:  # type: ignore[no-untyped-def]
            runs.append(first)
            conn.execute(select(users_table).where(users_table.c.id == first).with_for_update())
            if runs.count(first) == 1:  # the first attempt waits for the other; a retry does not
                both_locked_one.wait(10)
            conn.execute(select(users_table).where(users_table.c.id == second).with_for_update())

        try:
            store.transact(work)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])  # exactly one of them ran twice


def test_deadlock_in_the_exclusion_check_ends_as_a_lost_race(store: Store) -> None:
    """A reschedule waits in the exclusion check for an uncommitted overlapping booking whose
    transaction then waits for the rescheduled row: PostgreSQL aborts the reschedule (it waited
    first). Run again, it meets the committed booking: ``slot_unavailable``, not a 503."""
    publish(store, "expert-1", now=NOW)
    moved = bk.create_booking(store, "user-1", "expert-1", TEN, 60, "video_call", now=NOW)
    outcome: list[BaseException | str] = []

    def reschedule() -> None:
        try:
            bk.reschedule_booking(store, "user-1", moved.id, TWO_PM, now=NOW)
            outcome.append("rescheduled")
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    with store.write() as conn:
        place_booking(conn, user_id="user-2", expert_id="expert-1", start=TWO_PM, duration=60,
                      booking_type=BookingType.VIDEO_CALL, topic=None, notes=None, now=NOW)
        worker = threading.Thread(target=reschedule)
        worker.start()
        _wait_for_lock_wait(store)  # the reschedule now waits for this transaction in the exclusion check
        conn.execute(select(bookings_table.c.id).where(bookings_table.c.id == moved.id).with_for_update())
    worker.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], SlotUnavailable), outcome
    assert not isinstance(outcome[0], OperationalError)
    assert bk.get_booking(store, "user-1", moved.id).start == TEN


def _wait_for_lock_wait(store: Store) -> None:
    deadline = time.monotonic() + 10
    with store.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one()
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the reschedule never waited for the lock")
