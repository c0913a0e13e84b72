"""Benchmark: the reminder scan over 1,000,000 bookings in PostgreSQL.

Fills a scratch database with generate_series (10,000 experts, 100 bookings each, a day
apart: half in the past and completed, half ahead and confirmed, one in ten cancelled),
prints the EXPLAIN ANALYZE of the scan (it must use ``ix_bookings_reminder_due``), the
median and worst time of 30 scans (target: under 50 ms), and the time of one full
``send_due_reminders`` run that stamps the due bookings and writes their outbox events.

    .venv/bin/python bench/reminders.py                # 1,000,000 bookings
    .venv/bin/python bench/reminders.py --bookings 200000

The exclusion constraint is dropped in the scratch database before the bulk insert (the
rows are conflict-free by construction; checking a million ranges would measure GiST
inserts, not the scan). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench._common import scratch_store  # noqa: E402
from booking_engine.services import reminders  # noqa: E402
from booking_engine.store.repositories import reminders as reminder_rows  # noqa: E402

EXPERTS = 10_000


def fill(store, count: int, now: datetime) -> None:  # type: ignore[no-untyped-def]
    per_expert = count // EXPERTS
    half = per_expert // 2
    with store.engine.begin() as conn:
        for name in conn.execute(text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'bookings'::regclass AND contype = 'x'"
        )).scalars().all():
            conn.execute(text(f'ALTER TABLE bookings DROP CONSTRAINT "{name}"'))
        conn.execute(text(
            "INSERT INTO users (id, created_at, updated_at) "
            "SELECT 'bench-expert-' || g, now(), now() FROM generate_series(0, :n - 1) g "
            "UNION ALL SELECT 'bench-user', now(), now()"
        ), {"n": EXPERTS})
        conn.execute(text("""
            INSERT INTO bookings (id, expert_id, user_id, start_time, end_time, blocked_until, duration_minutes,
                                  buffer_minutes, status, type, price_cents, currency, created_at, updated_at,
                                  has_conflict, version, sequence)
            SELECT 'bench-' || i, 'bench-expert-' || (i % :experts), 'bench-user', s, s + interval '1 hour',
                   s + interval '75 minutes', 60, 15,
                   CASE WHEN i / :experts < :half THEN 'completed'
                        WHEN i % 10 = 0 THEN 'cancelled' ELSE 'confirmed' END,
                   'video_call', 6000, 'USD', now(), now(), false, 1, 0
            FROM (
                SELECT i, CAST(:t0 AS timestamptz) + (i / :experts - :half) * interval '1 day'
                          + ((i % :experts) % 96) * interval '15 minutes' AS s
                FROM generate_series(0, :count - 1) i
            ) g
        """), {"experts": EXPERTS, "half": half, "t0": now, "count": per_expert * EXPERTS})
        conn.execute(text("ANALYZE bookings"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    with scratch_store("postgresql") as store:
        started = time.perf_counter()
        fill(store, args.bookings, now)
        print(f"filled {args.bookings:,} bookings in {time.perf_counter() - started:.1f} s")
        stmt = reminder_rows.reminder_scan(now, reminders.REMINDER_LEAD, reminders.DEFAULT_BATCH)
        with store.engine.connect() as conn:
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = [r[0] for r in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
            print("\n".join(plan))
            if not any("ix_bookings_reminder_due" in line for line in plan):
                raise SystemExit("the reminder scan does not use ix_bookings_reminder_due")
            timings = []
            due = 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                due = len(conn.execute(stmt).all())
                timings.append((time.perf_counter() - t0) * 1000)
        print(f"reminder scan: {due} due bookings; median {statistics.median(timings):.2f} ms, "
              f"worst {max(timings):.2f} ms over {args.runs} runs (target < 50 ms)")
        t0 = time.perf_counter()
        written = reminders.send_due_reminders(store, now=now)
        print(f"send_due_reminders: {written} bookings stamped + outbox events in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms; second run wrote "
              f"{reminders.send_due_reminders(store, now=now)}")


if __name__ == "__main__":
    main()
