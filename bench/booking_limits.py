"""What the daily and weekly limits cost (docs/domain.md#booking-limits), on PostgreSQL.

Two experts with the same schedule and bookings, one without limits and one with limits so high
that nothing is refused: what remains is the price of the rule itself, the settings row locked
before counting (which serialises one expert's bookings) and the count query. Prints booking
creation from 8 threads and the month view, each with and without limits.
Run: ``.venv/bin/python bench/booking_limits.py [--bookings N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import NOW, scratch_store  # noqa: E402
from bench.booking_create import THREADS, create_in_threads, hourly_starts  # noqa: E402
from booking_engine.services import availability as av  # noqa: E402
from booking_engine.store.db import Store  # noqa: E402
from tests.support.factories import publish  # noqa: E402

WEEKLY = {d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "24:00"}]}
          for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def create(store: Store, expert: str, total: int) -> float:
    elapsed, errors = create_in_threads(store, expert, hourly_starts(total))
    assert not errors, errors
    return total / elapsed


def month_ms(store: Store, expert: str, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        av.get_month(store, expert, NOW.year, NOW.month, now=NOW)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=600)
    args = parser.parse_args()
    print(f"bench/booking_limits.py: PostgreSQL, {THREADS} threads, {args.bookings} bookings per expert")
    with scratch_store("postgresql") as store:
        common = {"weeklySchedule": WEEKLY, "bufferBetweenBookingsMinutes": 0, "advanceBookingDays": 400,
                  "slotIncrementMinutes": 60}
        publish(store, "free-expert", now=NOW, **common)
        publish(store, "limited-expert", now=NOW, maxBookingsPerDay=1000, maxBookingsPerWeek=7000, **common)
        for expert in ("free-expert", "limited-expert"):
            rate = create(store, expert, args.bookings)
            print(f"  {expert:<15} create: {rate:7.1f} bookings/s   month view: {month_ms(store, expert):6.2f} ms "
                  "(median of 20)")


if __name__ == "__main__":
    main()
