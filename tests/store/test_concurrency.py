"""No double booking under real concurrency: threads on both databases, processes on PostgreSQL.

The rule: docs/lifecycle.md#no-double-booking.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from booking_engine.errors import PreconditionFailed, SlotUnavailable
from booking_engine.model import Booking, BookingStatus, BookingType
from booking_engine.services import availability as av
from booking_engine.services import bookings as bk
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from tests.support.factories import NOW, publish, settings_body

TEN = datetime(2030, 3, 5, 10, 0, tzinfo=UTC)


def _attempt(store: Store, barrier: threading.Barrier | None, user: str, start: datetime) -> str:
    if barrier is not None:
        barrier.wait()
    try:
        bk.create_booking(store, user, "expert-1", start, 60, "video_call", now=NOW)
        return "ok"
    except SlotUnavailable:
        return "slot_unavailable"
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the guarantee
        return f"error:{type(exc).__name__}:{exc}"


def _race(store: Store, starts: list[datetime]) -> Counter[str]:
    barrier = threading.Barrier(len(starts))
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        results = list(pool.map(lambda i: _attempt(store, barrier, f"user-{i}", starts[i]), range(len(starts))))
    return Counter(results)


def test_32_threads_same_slot_exactly_one_wins(store: Store) -> None:
    publish(store)
    assert _race(store, [TEN] * 32) == Counter({"ok": 1, "slot_unavailable": 31})
    assert bk.audit_conflicts(store) == []


def test_32_threads_only_buffer_overlap_exactly_one_wins(store: Store) -> None:
    publish(store, slotIncrementMinutes=5)
    a, b = TEN, TEN + timedelta(minutes=70)  # 10:00-11:00 and 11:10-12:10: 10 minutes apart, buffer 15
    result = _race(store, [a if i % 2 else b for i in range(32)])
    assert result == Counter({"ok": 1, "slot_unavailable": 31})


def test_exclusion_constraint_itself_refuses_a_conflicting_row(pg_store: Store) -> None:
    """The database, not only the read-check, refuses an overlapping write (PostgreSQL)."""
    from tests.support.db import truncate_all

    store = pg_store
    truncate_all(store)
    publish(store)
    bk.create_booking(store, "u1", "expert-1", TEN, 60, "video_call", now=NOW)
    clash = Booking(
        id="clash", expert_id="expert-1", user_id="u1", start=TEN + timedelta(minutes=70), duration=60,
        type=BookingType.VIDEO_CALL, status=BookingStatus.PENDING, price_cents=0, currency="USD", buffer=15,
        created_at=NOW,
    )
    # TEN's blocked range is [10:00, 11:15); a row starting 11:10 overlaps it.
    with pytest.raises(SlotUnavailable), store.write() as conn:
        booking_rows.insert_booking(conn, clash, NOW)
    clash.start = TEN + timedelta(minutes=75)
    with store.write() as conn:
        booking_rows.insert_booking(conn, clash, NOW)


def _process_worker(url: str, index: int, barrier: multiprocessing.synchronize.Barrier, queue) -> None:  # type: ignore[name-defined]
    store = Store.from_url(url)
    thread_barrier = threading.Barrier(8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        barrier.wait()
        results = list(pool.map(lambda i: _attempt(store, thread_barrier, f"p{index}-{i}", TEN), range(8)))
    store.dispose()
    queue.put(results)


def test_4_processes_8_threads_each_same_slot_on_postgresql(pg_url: str, pg_store: Store) -> None:
    from tests.support.db import truncate_all

    truncate_all(pg_store)
    publish(pg_store)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(pg_url, i, barrier, queue)) for i in range(4)]
    for p in procs:
        p.start()
    results: list[str] = []
    for _ in procs:
        results.extend(queue.get(timeout=120))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert Counter(results) == Counter({"ok": 1, "slot_unavailable": 31})
    assert bk.audit_conflicts(pg_store) == []


def test_two_settings_updates_from_the_same_version_one_wins(store: Store) -> None:
    publish(store)
    barrier = threading.Barrier(2)

    def update(buffer: int) -> str:
        barrier.wait()
        try:
            av.set_availability(store, "expert-1", "expert-1", settings_body(bufferBetweenBookingsMinutes=buffer), 1)
            return "ok"
        except PreconditionFailed:
            return "precondition_failed"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(update, [0, 45]))
    assert results == ["ok", "precondition_failed"]
    assert av.get_availability(store, "expert-1").version == 2
