"""The last place of a day under real concurrency (docs/domain.md#booking-limits): bookings that do not
overlap, so the exclusion constraint cannot decide, race for it in threads; one wins, on both databases."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from booking_engine.errors import BookingLimitReached
from booking_engine.services import bookings as bk
from booking_engine.store.db import Store
from tests.support.factories import NOW, publish


def _attempt(store: Store, barrier: threading.Barrier, user: str, start: datetime) -> str:
    barrier.wait()
    try:
        bk.create_booking(store, user, "expert-1", start, 60, "video_call", now=NOW)
        return "ok"
    except BookingLimitReached:
        return "booking_limit_reached"
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the guarantee
        return f"error:{type(exc).__name__}:{exc}"


def _race(store: Store, starts: list[datetime]) -> Counter[str]:
    barrier = threading.Barrier(len(starts))
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        return Counter(pool.map(lambda i: _attempt(store, barrier, f"user-{i}", starts[i]), range(len(starts))))


def test_racing_for_the_last_place_of_a_day_one_wins(store: Store) -> None:
    publish(store, maxBookingsPerDay=2, bufferBetweenBookingsMinutes=0)
    for offset in range(1, 6):
        day = datetime(2030, 3, 4, 9, 0, tzinfo=UTC) + timedelta(days=offset)
        bk.create_booking(store, "user-first", "expert-1", day, 60, "video_call", now=NOW)
        # Seven distinct hours of the same day, none overlapping: only the daily limit can refuse them.
        result = _race(store, [day + timedelta(hours=h) for h in range(1, 8)])
        assert result == Counter({"ok": 1, "booking_limit_reached": 6}), (offset, result)


def test_racing_for_the_last_place_of_a_week_one_wins(store: Store) -> None:
    publish(store, maxBookingsPerWeek=1, bufferBetweenBookingsMinutes=0)
    monday = datetime(2030, 3, 11, 10, 0, tzinfo=UTC)
    result = _race(store, [monday + timedelta(days=d) for d in range(7)])  # Monday to Sunday, one ISO week
    assert result == Counter({"ok": 1, "booking_limit_reached": 6}), result
