"""Time-driven jobs on an injected clock (time-machine), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select, text

from booking_engine.services import booking_requests, reminders
from booking_engine.services import bookings as booking_service
from booking_engine.store.db import Store
from booking_engine.store.repositories import reminders as reminder_rows
from booking_engine.store.tables import bookings, outbox
from tests.support.factories import NOW
from tests.support.scenario import EXPERT, USER, book, next_slot, outbox_types, parties


def _payloads(store: Store, event_type: str) -> list[dict]:
    with store.read() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.event_type == event_type).order_by(outbox.c.id))
        return [dict(r[0]) for r in rows]


def test_reminder_once_per_party_one_hour_before(store: Store) -> None:
    parties(store)
    start = next_slot(1, 10)
    confirmed = book(store, start, confirm=True)
    book(store, next_slot(1, 12))  # pending: never reminded
    with time_machine.travel(start - timedelta(hours=1, minutes=1), tick=False):
        assert reminders.send_due_reminders(store) == 0
    with time_machine.travel(start - timedelta(minutes=50), tick=False):
        assert reminders.send_due_reminders(store) == 1
        assert reminders.send_due_reminders(store) == 0  # a second run finds nothing
    with time_machine.travel(start - timedelta(minutes=35), tick=False):
        assert reminders.send_due_reminders(store) == 0  # nor does a later one
    [payload] = _payloads(store, "booking.reminder")
    assert payload["booking"]["id"] == confirmed.id
    assert payload["parties"] == ["user", "expert"]
    with store.read() as conn:
        row = conn.execute(select(bookings).where(bookings.c.id == confirmed.id)).mappings().one()
    assert row["user_reminded_at"] is not None and row["expert_reminded_at"] is not None


def test_reminder_only_for_the_party_not_yet_reminded(store: Store) -> None:
    parties(store)
    start = next_slot(1, 10)
    booking = book(store, start, confirm=True)
    with store.write() as conn:
        conn.execute(bookings.update().where(bookings.c.id == booking.id).values(user_reminded_at=NOW))
    assert reminders.send_due_reminders(store, now=start - timedelta(minutes=30)) == 1
    assert _payloads(store, "booking.reminder")[0]["parties"] == ["expert"]


def test_starting_announced_once_at_the_start(store: Store) -> None:
    parties(store)
    start = next_slot(1, 10)
    booking = book(store, start, confirm=True)
    with time_machine.travel(start - timedelta(seconds=1), tick=False):
        assert reminders.announce_starting_bookings(store) == 0
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert reminders.announce_starting_bookings(store) == 1
        assert reminders.announce_starting_bookings(store) == 0
    assert [p["booking"]["id"] for p in _payloads(store, "booking.starting")] == [booking.id]


def test_starting_not_announced_after_the_end(store: Store) -> None:
    parties(store)
    start = next_slot(1, 10)
    book(store, start, confirm=True)
    assert reminders.announce_starting_bookings(store, now=start + timedelta(hours=2)) == 0


def test_completion_and_expiry_follow_the_clock(store: Store) -> None:
    parties(store)
    confirmed = book(store, next_slot(1, 10), confirm=True)
    pending = book(store, next_slot(1, 13))
    request = booking_requests.create_request(store, USER, EXPERT, 60, "video_call", [next_slot(2, 10)], now=NOW)
    with time_machine.travel(confirmed.end - timedelta(minutes=1), tick=False):
        assert booking_service.complete_due_bookings(store) == 0
    with time_machine.travel(confirmed.end + timedelta(minutes=1), tick=False):
        assert booking_service.complete_due_bookings(store) == 1
        assert booking_service.expire_unconfirmed_bookings(store) == 0
    with time_machine.travel(pending.start + timedelta(minutes=1), tick=False):
        assert booking_service.expire_unconfirmed_bookings(store) == 1
        assert booking_service.expire_unconfirmed_bookings(store) == 0
    with time_machine.travel(request.expires_at + timedelta(seconds=1), tick=False):
        assert booking_requests.expire_requests(store) == 1
    types = outbox_types(store)
    assert types.count("booking.completed") == 1
    assert types.count("booking_request.expired") == 1
    cancelled = _payloads(store, "booking.cancelled")
    assert [p["booking"]["cancellationReason"] for p in cancelled] == ["not_confirmed_in_time"]


def test_audit_finds_no_conflicts_in_a_clean_store(store: Store) -> None:
    parties(store)
    book(store, next_slot(1, 10), confirm=True)
    assert booking_service.audit_conflicts(store) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_reminder_scan_uses_the_partial_index(store: Store) -> None:
    scans = {
        "ix_bookings_reminder_due": reminder_rows.reminder_scan(NOW, reminders.REMINDER_LEAD, reminders.DEFAULT_BATCH),
        "ix_bookings_starting_due": reminder_rows.starting_scan(NOW, reminders.DEFAULT_BATCH),
    }
    with store.write() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        for index, stmt in scans.items():
            compiled = stmt.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
            assert index in plan, plan
