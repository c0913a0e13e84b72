"""``calbook admin ...`` run as an operator runs it, against both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from tests.api.conftest import EXPERT, USER, day_ahead
from tests.factories import publish
from tests.operations.processes import common_env, processes


def _book(store: Store, hour: int) -> str:
    from datetime import UTC, datetime

    from booking_engine.services import bookings

    day = day_ahead()
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return bookings.create_booking(store, USER, EXPERT, start, 60, "video_call").id


def test_prune_now_deletes_only_what_is_past_the_window(store: Store, db_url: str, tmp_path: Path) -> None:
    publish(store, EXPERT, now=utcnow())
    old, recent, pending = _book(store, 9), _book(store, 11), _book(store, 13)
    now = utcnow()
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.aggregate_id == old).values(dispatched_at=now - timedelta(days=3)))
        conn.execute(update(outbox).where(outbox.c.aggregate_id == recent).values(dispatched_at=now))
    env = common_env(tmp_path / "data", CALBOOK_DATABASE_URL=db_url)
    with processes(tmp_path) as group:
        done = group.run(["admin", "prune", "--days", "2"], env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("pruned 1 dispatched outbox events, 0 finished webhook deliveries"), done.stdout
        assert _left(store) >= {recent, pending} and old not in _left(store)
        # --days 0 keeps nothing that is finished (0 is a window, not "the default").
        everything = group.run(["admin", "prune", "--days", "0"], env)
    assert everything.returncode == 0 and everything.stdout.startswith("pruned 1 "), everything.stdout
    assert _left(store) == {pending}


def _left(store: Store) -> set[str]:
    with store.read() as conn:
        return {r[0] for r in conn.execute(select(outbox.c.aggregate_id))}
