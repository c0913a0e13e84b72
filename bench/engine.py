"""Benchmark (a): the pure availability engine.

Slots for each day of a 30-day range plus the month view, for an expert with 100, 1,000
and 10,000 busy intervals (building the busy index from
the store's integer form is included). Target: under 10 ms at
10,000 intervals. Run: ``.venv/bin/python bench/engine.py``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import NOW, fmt, measure, random_busy  # noqa: E402
from booking_engine import availability as engine  # noqa: E402
from booking_engine.model import AvailabilitySettings  # noqa: E402
from tests.support.factories import settings_body  # noqa: E402


def main() -> None:
    settings = AvailabilitySettings.from_dict(
        "e", settings_body(timezone="Europe/Berlin", advanceBookingDays=60), version=1
    )
    first = (NOW + timedelta(days=1)).date()
    print("bench/engine.py: 30 days of 60-minute slots + month view, Europe/Berlin, 09:00-17:00 daily")
    for count in (100, 1_000, 10_000):
        # The store hands the engine epoch microseconds (see store/repositories/busy_time.py).
        micros = [(engine.to_micros(s), engine.to_micros(e)) for s, e in random_busy(count)]

        def run(micros: list[tuple[int, int]] = micros) -> None:
            index = engine.BusyIndex.from_micros(micros)
            for offset in range(30):
                engine.slots_for_date(settings, {}, index, first + timedelta(days=offset), 60, NOW)
            engine.month_view(settings, {}, index, 2030, 3, NOW)

        print(f"  busy={count:>6}  {fmt(measure(run))}")


if __name__ == "__main__":
    main()
