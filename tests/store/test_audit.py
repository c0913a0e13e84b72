"""The integrity audit finds what it is there to find: a conflicting pair that got into the store.

The property tests use the audit as their oracle ("no two active bookings conflict"), and every
other test sees it find nothing; so here a conflicting pair is seeded behind the services' back
(on PostgreSQL the exclusion constraint is dropped inside the seeding transaction, which is
rolled back) and the audit's query must name it, buffers included (docs/domain.md#conflicts-and-buffers).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import text

from booking_engine.model import Booking, BookingStatus, new_id
from booking_engine.services import bookings as booking_service
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from tests.support.factories import NOW
from tests.support.scenario import book, next_slot, parties


def _seeded_pairs(store: Store, *seeded: Booking) -> list[tuple[str, str]]:
    """Insert ``seeded`` as they are and run the audit query in the same transaction, then roll back."""
    with store.engine.connect() as conn:
        transaction = conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap"))
            for booking in seeded:
                booking_rows.insert_booking(conn, booking, NOW)
            return booking_rows.conflicting_pairs(conn)
        finally:
            transaction.rollback()


def _twin(of: Booking, start_shift: timedelta, status: BookingStatus = BookingStatus.CONFIRMED) -> Booking:
    return dataclasses.replace(of, id=new_id(), start=of.start + start_shift, status=status, version=1, events=[])


@pytest.mark.parametrize(
    ("shift", "conflicts"),
    [(timedelta(minutes=30), True), (timedelta(minutes=65), True), (timedelta(minutes=60 + 15 + 15), False)],
    ids=["overlapping", "within-buffer", "clear-of-the-buffer"],
)
def test_audit_finds_a_seeded_conflicting_pair(store: Store, shift: timedelta, conflicts: bool) -> None:
    parties(store)
    first = book(store, next_slot(1, 10), confirm=True)
    second = _twin(first, shift)

    pairs = _seeded_pairs(store, second)

    assert pairs == ([tuple(sorted((first.id, second.id)))] if conflicts else [])
    assert booking_service.audit_conflicts(store) == []  # rolled back: the store is clean again


def test_a_cancelled_booking_is_no_conflict(store: Store) -> None:
    parties(store)
    first = book(store, next_slot(1, 10), confirm=True)
    assert _seeded_pairs(store, _twin(first, timedelta(minutes=30), BookingStatus.CANCELLED)) == []
