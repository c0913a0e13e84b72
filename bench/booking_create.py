"""Benchmark (c): booking creation on PostgreSQL from 8 threads.

Non-overlapping slots (every thread books its own free slots of one expert, so every
attempt passes the availability check and meets the exclusion constraint), then the
contention case (all 8 threads race for the same slot, round after round). Target: at
least 300 bookings/s. Run: ``.venv/bin/python bench/booking_create.py [--bookings N]``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import NOW, scratch_store  # noqa: E402
from booking_engine.errors import SlotUnavailable  # noqa: E402
from booking_engine.services import bookings as bk  # noqa: E402
from booking_engine.store.db import Store  # noqa: E402
from tests.support.factories import publish  # noqa: E402

THREADS = 8


def create_in_threads(store: Store, expert: str, starts: list[datetime]) -> tuple[float, Counter[str]]:
    """Books every start from THREADS threads (each its own share): the seconds taken and the refusals by kind."""
    chunks = [starts[i::THREADS] for i in range(THREADS)]
    errors: Counter[str] = Counter()

    def run(chunk: list[datetime]) -> None:
        for i, start in enumerate(chunk):
            try:
                bk.create_booking(store, f"user-{i % 50}", expert, start, 60, "video_call", now=NOW)
            except Exception as exc:  # noqa: BLE001 - counted and printed, the run goes on
                errors[type(exc).__name__] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(run, chunks))
    return time.perf_counter() - t0, errors


def hourly_starts(total: int) -> list[datetime]:
    """One-hour slots back to back from the first midnight: with no buffer, none overlaps another."""
    first = NOW + timedelta(days=1)
    return [first + timedelta(hours=k) for k in range(total)]


def non_overlapping(store: Store, total: int) -> None:
    elapsed, errors = create_in_threads(store, "bench-expert", hourly_starts(total))
    print(f"  non-overlapping: {total} bookings in {elapsed:.2f} s = {total / elapsed:7.1f} bookings/s, "
          f"errors={dict(errors)}")


def contention(store: Store, rounds: int) -> None:
    first = NOW + timedelta(days=200)  # beyond the slots used above
    results: Counter[str] = Counter()
    t0 = time.perf_counter()
    for r in range(rounds):
        start = first + timedelta(hours=r)
        barrier = threading.Barrier(THREADS)

        def attempt(i: int, start=start, barrier=barrier) -> str:  # type: ignore[no-untyped-def]
            barrier.wait()
            try:
                bk.create_booking(store, f"racer-{i}", "bench-expert", start, 60, "video_call", now=NOW)
                return "won"
            except SlotUnavailable:
                return "slot_unavailable"

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results.update(pool.map(attempt, range(THREADS)))
    elapsed = time.perf_counter() - t0
    attempts = rounds * THREADS
    print(f"  same-slot contention: {rounds} rounds x {THREADS} threads in {elapsed:.2f} s = "
          f"{attempts / elapsed:7.1f} attempts/s, {dict(results)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    print(f"bench/booking_create.py: PostgreSQL, {THREADS} threads")
    with scratch_store("postgresql") as store:
        weekly = {d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "24:00"}]}
                  for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        publish(store, "bench-expert", now=NOW, weeklySchedule=weekly, bufferBetweenBookingsMinutes=0,
                advanceBookingDays=400, slotIncrementMinutes=60)
        non_overlapping(store, args.bookings)
        contention(store, args.rounds)


if __name__ == "__main__":
    main()
