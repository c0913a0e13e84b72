"""Benchmark: how long the booking pages take to render (docs/web.md#performance).

In process (FastAPI's TestClient, so the HTTP stack is included but no network), for each
database: an expert with a published week, 40 bookings and 1,000 busy blocks; each page is
fetched 20 times after 2 warm-ups. Numbers are milliseconds per page (median, p95, min).
Run: ``.venv/bin/python bench/pages.py [sqlite|postgresql ...]``.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from bench._common import fmt, measure, random_busy, scratch_store, store_busy  # noqa: E402
from booking_engine.clock import utcnow  # noqa: E402
from booking_engine.services import bookings  # noqa: E402
from tests.support.api import make_settings, token  # noqa: E402
from tests.support.factories import publish  # noqa: E402

EXPERT, USER = "bench-expert", "bench-user"


def main(kinds: list[str]) -> None:
    print("bench/pages.py: ms per page render, 40 bookings and 1,000 busy blocks")
    for kind in kinds:
        with scratch_store(kind) as store, tempfile.TemporaryDirectory() as tmp:
            now = utcnow()
            publish(store, EXPERT, now=now, timezone="Europe/Berlin", advanceBookingDays=60)
            start = datetime(now.year, now.month, now.day, 9, tzinfo=UTC) + timedelta(days=2)
            for n in range(40):
                at = start + timedelta(days=n // 4, hours=2 * (n % 4))
                bookings.create_booking(store, f"{USER}" if n % 2 else f"{USER}-{n}", EXPERT, at, 60, "video_call")
            store_busy(store, EXPERT, [(s - s.replace(year=2030, month=3, day=1, hour=0, minute=0) + start, e
                                        - s.replace(year=2030, month=3, day=1, hour=0, minute=0) + start)
                                       for s, e in random_busy(1_000)])
            app = create_app(store, make_settings(Path(tmp)), tasks=None)
            day = (start + timedelta(days=1)).date()
            pages = {
                "experts": "/experts", "month": f"/experts/{EXPERT}?month={day.strftime('%Y-%m')}",
                "day": f"/experts/{EXPERT}/{day.isoformat()}?duration=60", "bookings": "/bookings",
            }
            with TestClient(app) as user, TestClient(app) as expert:
                user.cookies.set("calbook_tz", "Europe/Berlin")
                assert user.get(f"/login?token={token(USER, ttl=300)}").status_code == 200
                assert expert.get(f"/login?token={token(EXPERT, ttl=300)}").status_code == 200
                for name, path in pages.items():
                    assert user.get(path).status_code == 200, path
                    print(f"  {kind:10s} {name:9s} {fmt(measure(lambda path=path: user.get(path)))}")
                assert expert.get("/schedule").status_code == 200
                print(f"  {kind:10s} {'schedule':9s} {fmt(measure(lambda: expert.get('/schedule')))}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
