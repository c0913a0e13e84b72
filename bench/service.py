"""Benchmark (b): the same through the service layer, busy intervals stored in the tables.

For each database: ``get_slots_range`` over 30 days (one read) plus one ``get_month``;
also 30 separate ``get_slots`` calls for comparison,, with 100,
1,000 and 10,000 stored busy blocks over the 30 days. Target: under 50 ms at 10,000.
Run: ``.venv/bin/python bench/service.py [sqlite|postgresql ...]``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import NOW, fmt, measure, random_busy, scratch_store, store_busy  # noqa: E402
from booking_engine.services import availability as av  # noqa: E402
from tests.support.factories import publish  # noqa: E402


def main(kinds: list[str]) -> None:
    print("bench/service.py: 30 x get_slots + get_month through the service layer")
    for kind in kinds:
        for count in (100, 1_000, 10_000):
            with scratch_store(kind) as store:
                publish(store, "bench-expert", now=NOW, timezone="Europe/Berlin", advanceBookingDays=60)
                store_busy(store, "bench-expert", random_busy(count))
                first = (NOW + timedelta(days=1)).date()

                def slots_30(store=store, first=first) -> None:  # type: ignore[no-untyped-def]
                    for offset in range(30):
                        av.get_slots(store, "bench-expert", first + timedelta(days=offset), 60, now=NOW)

                def month(store=store) -> None:  # type: ignore[no-untyped-def]
                    av.get_month(store, "bench-expert", 2030, 3, now=NOW)

                def both(store=store, first=first, month=month) -> None:  # type: ignore[no-untyped-def]
                    av.get_slots_range(store, "bench-expert", first, first + timedelta(days=29), 60, now=NOW)
                    month()

                print(f"  {kind:<10} busy={count:>6}  range30+month  {fmt(measure(both, repeat=10))}")
                print(f"  {kind:<10} busy={count:>6}  30 x get_slots {fmt(measure(slots_30, repeat=5))}")
                print(f"  {kind:<10} busy={count:>6}  month only     {fmt(measure(month, repeat=10))}")
                print(f"  {kind:<10} busy={count:>6}  one day slots  {fmt(measure(lambda s=store, f=first: av.get_slots(s, 'bench-expert', f, 60, now=NOW), repeat=30))}")  # noqa: E501


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
