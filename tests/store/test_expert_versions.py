"""The expert version (migration 0012) moves on every kind of write the read views depend on.

On SQLite and PostgreSQL, through the services (and raw SQL for busy blocks, as a bulk
writer would): the triggers bump it in the same transaction, so a rolled-back write leaves
it where it was. The CalDAV sync path is covered in tests/sync/test_expert_version_sync.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import delete, insert, update

from booking_engine.clock import utcnow
from booking_engine.services import availability, booking_requests, bookings
from booking_engine.store.db import Store
from booking_engine.store.repositories.expert_versions import get_version
from booking_engine.store.tables import busy_blocks
from tests.support.factories import publish

EXPERT, USER, OTHER = "expert-1", "user-1", "expert-2"


def version(store: Store, expert_id: str = EXPERT) -> int | None:
    with store.read() as conn:
        return get_version(conn, expert_id)


def _tomorrow(hour: int) -> object:
    base = (utcnow() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base


def test_every_kind_of_write_bumps_the_version(store: Store) -> None:
    assert version(store) is None
    publish(store, EXPERT, now=utcnow())
    seen = [version(store)]
    assert seen[0] is not None

    def moved() -> None:
        now = version(store)
        assert now is not None and now > seen[-1], (seen, now)  # type: ignore[operator]
        seen.append(now)

    current = availability.get_availability(store, EXPERT)
    availability.set_availability(store, EXPERT, EXPERT, {**current.as_dict(), "bufferBetweenBookingsMinutes": 0},
                                  current.version)
    moved()
    day = (utcnow() + timedelta(days=3)).date()
    availability.set_exception(store, EXPERT, EXPERT, day, {"type": "unavailable"})
    moved()
    availability.delete_exception(store, EXPERT, EXPERT, day)
    moved()
    booked = bookings.create_booking(store, USER, EXPERT, _tomorrow(10), 60, "video_call")  # type: ignore[arg-type]
    moved()
    bookings.cancel_booking(store, USER, booked.id, "changed plans")
    moved()
    booking_requests.create_request(store, USER, EXPERT, 60, "video_call", [_tomorrow(12)])  # type: ignore[list-item]
    moved()
    with store.write() as conn:
        conn.execute(insert(busy_blocks).values(
            expert_id=EXPERT, calendar_id="", external_id="x", start_time=_tomorrow(14), end_time=_tomorrow(15)))
    moved()
    with store.write() as conn:
        conn.execute(update(busy_blocks).where(busy_blocks.c.expert_id == EXPERT).values(end_time=_tomorrow(16)))
    moved()
    with store.write() as conn:
        conn.execute(delete(busy_blocks).where(busy_blocks.c.expert_id == EXPERT))
    moved()


def test_a_write_bumps_only_its_own_expert_and_a_rollback_bumps_nothing(store: Store) -> None:
    publish(store, EXPERT, now=utcnow())
    publish(store, OTHER, now=utcnow())
    before, other = version(store), version(store, OTHER)
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(insert(busy_blocks).values(
            expert_id=EXPERT, calendar_id="", external_id="x", start_time=_tomorrow(14), end_time=_tomorrow(15)))
        raise RuntimeError("rolled back")
    assert version(store) == before
    availability.set_exception(store, EXPERT, EXPERT, date(2030, 1, 2), {"type": "unavailable"})
    assert version(store) != before and version(store, OTHER) == other
