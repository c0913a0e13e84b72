"""CPU per call of the reads behind a slots request, in process: what the API's computed path costs
before any HTTP (docs/performance.md#prebuilt-statements).

For each database: an expert open around the clock, then ``get_slots`` for one day, ``get_month``
and ``get_busy`` for a week, each called ``--calls`` times after a
warm-up. It prints CPU milliseconds per call (``time.process_time``, which the machine's other
load moves much less than wall time) and Python function calls per call (``cProfile``'s count,
the same from run to run for the same code and data).

    .venv/bin/python bench/read_path_cpu.py [--calls 1000] [sqlite] [postgresql]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import scratch_store  # noqa: E402
from booking_engine.services import availability  # noqa: E402

OPEN_ALL_DAY = {
    "timezone": "UTC",
    "weeklySchedule": {d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "24:00"}]}
                       for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "bufferBetweenBookingsMinutes": 0, "advanceBookingDays": 60, "slotIncrementMinutes": 60,
    "hourlyRateCents": 6000,
}


def per_call(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(CPU ms per call, Python function calls per call)."""
    for _ in range(50):
        fn()
    started = time.process_time()
    for _ in range(calls):
        fn()
    cpu_ms = (time.process_time() - started) / calls * 1000
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(100):
        fn()
    profile.disable()
    function_calls = pstats.Stats(profile).total_calls / 100  # type: ignore[attr-defined]
    return cpu_ms, function_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    day = (now + timedelta(days=2)).date()
    print(f"bench/read_path_cpu.py: {args.calls} calls each")
    for kind in args.kinds:
        with scratch_store(kind) as store:
            availability.set_availability(store, "bench-expert", "bench-expert", OPEN_ALL_DAY, 0)
            reads: dict[str, Callable[[], object]] = {
                "get_slots (one day)": lambda: availability.get_slots(store, "bench-expert", day, 60, now=now),
                "get_month": lambda: availability.get_month(store, "bench-expert", day.year, day.month, now=now),
                "get_busy (a week)": lambda: availability.get_busy(store, "bench-expert", now, now + timedelta(days=7)),
            }
            for name, fn in reads.items():
                cpu_ms, function_calls = per_call(fn, args.calls)
                print(f"  {kind:<10}  {name:<20}  {cpu_ms:6.3f} ms CPU/call   "
                      f"{function_calls:8.0f} function calls/call")


if __name__ == "__main__":
    main()
