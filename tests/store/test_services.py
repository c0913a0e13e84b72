"""The service layer on SQLite and PostgreSQL: every use case, its errors, and its outbox writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from booking_engine.errors import (
    BookingError,
    DurationTooShort,
    Forbidden,
    InvalidState,
    NotFound,
    OutsideAvailability,
    PreconditionFailed,
    SlotUnavailable,
    ValidationError,
)
from booking_engine.services import availability as av
from booking_engine.services import booking_requests as rq
from booking_engine.services import bookings as bk
from booking_engine.services import users
from booking_engine.store.repositories import users as user_rows
from booking_engine.store.repositories._common import count_rows
from booking_engine.store.tables import availability_settings, bookings, busy_blocks, outbox
from tests.support.factories import NOW, publish, settings_body

TUE = date(2030, 3, 5)


def at(hour: int, minute: int = 0, day: date = TUE) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def events(store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]


def test_settings_optimistic_lock(store) -> None:
    first = av.get_availability(store, "expert-1")
    assert first.version == 0 and not any(d.is_available for d in first.weekly.values())
    saved = av.set_availability(store, "expert-1", "expert-1", settings_body(), 0, now=NOW)
    assert saved.version == 1
    a = av.set_availability(store, "expert-1", "expert-1", settings_body(bufferBetweenBookingsMinutes=30), 1, now=NOW)
    assert a.version == 2
    with pytest.raises(PreconditionFailed):
        av.set_availability(store, "expert-1", "expert-1", settings_body(bufferBetweenBookingsMinutes=0), 1, now=NOW)
    assert av.get_availability(store, "expert-1").buffer == 30
    with pytest.raises(PreconditionFailed):
        av.set_availability(store, "expert-1", "expert-1", settings_body(), 0, now=NOW)  # "create" twice
    with pytest.raises(Forbidden):
        av.set_availability(store, "someone", "expert-1", settings_body(), 2, now=NOW)


def test_invalid_settings_write_nothing(store) -> None:
    for bad in (
        settings_body(timezone="Nowhere/Land"),
        settings_body(minBookingDurationMinutes=30),
        settings_body(weeklySchedule={"mon": {"isAvailable": True, "windows": [{"start": "09:00", "end": "08:00"}]}}),
        settings_body(slotIncrementMinutes="30"),
        {**settings_body(), "surprise": 1},
    ):
        with pytest.raises(ValidationError):
            av.set_availability(store, "expert-1", "expert-1", bad, 0, now=NOW)
    with store.read() as conn:
        assert count_rows(conn, availability_settings) == 0


def test_exceptions_set_list_delete(store) -> None:
    publish(store)
    av.set_exception(store, "expert-1", "expert-1", TUE, {"type": "unavailable", "reason": "holiday"}, now=NOW)
    assert av.get_slots(store, "expert-1", TUE, 60, now=NOW).slots == []
    custom = {"type": "custom_hours", "windows": [{"start": "13:00", "end": "15:00"}]}
    av.set_exception(store, "expert-1", "expert-1", TUE, custom, now=NOW)
    assert [s.start for s in av.get_slots(store, "expert-1", TUE, 60, now=NOW).slots] == [at(13), at(13, 30), at(14)]
    listed = av.list_exceptions(store, "expert-1", TUE - timedelta(days=1), TUE + timedelta(days=1))
    assert [e.day for e in listed] == [TUE]
    with pytest.raises(Forbidden):
        av.delete_exception(store, "other", "expert-1", TUE)
    av.delete_exception(store, "expert-1", "expert-1", TUE)
    with pytest.raises(NotFound):
        av.delete_exception(store, "expert-1", "expert-1", TUE)
    assert len(av.get_slots(store, "expert-1", TUE, 60, now=NOW).slots) == 15


def test_create_booking_validations(store) -> None:
    publish(store)
    cases: list[tuple[datetime, int, str]] = [
        (at(10), 45, "duration_too_short"),
        (at(10), 70, "duration_not_multiple_of_15"),
        (at(10), 195, "duration_too_long"),
        (at(7), 60, "outside_availability"),
        (at(16, 30), 60, "outside_availability"),
        (NOW - timedelta(hours=1), 60, "in_the_past"),
        (NOW + timedelta(days=31), 60, "beyond_advance_limit"),
    ]
    for start, duration, code in cases:
        with pytest.raises(BookingError) as err:
            bk.create_booking(store, "user-1", "expert-1", start, duration, "video_call", now=NOW)
        assert err.value.code == code, (start, duration)
    with pytest.raises(ValidationError):
        bk.create_booking(store, "user-1", "expert-1", at(10).replace(tzinfo=None), 60, "video_call", now=NOW)
    with pytest.raises(ValidationError):
        bk.create_booking(store, "user-1", "expert-1", at(10), 60, "carrier_pigeon", now=NOW)
    with pytest.raises(ValidationError):
        bk.create_booking(store, "expert-1", "expert-1", at(10), 60, "video_call", now=NOW)
    with pytest.raises(NotFound):  # an expert nobody knows (docs/domain.md#experts)
        bk.create_booking(store, "user-1", "never-published", at(10), 60, "video_call", now=NOW)
    users.update_profile(store, "never-published", display_name="Known, closed", now=NOW)
    with pytest.raises(OutsideAvailability):  # known, but every day closed
        bk.create_booking(store, "user-1", "never-published", at(10), 60, "video_call", now=NOW)
    with store.read() as conn:
        assert count_rows(conn, bookings) == 0 and count_rows(conn, outbox) == 0


def test_notice_rule_through_the_service(store) -> None:
    publish(store, minNoticeMinutes=180)
    with pytest.raises(BookingError) as err:
        bk.create_booking(store, "u", "expert-1", NOW + timedelta(hours=2), 60, "video_call", now=NOW)
    assert err.value.code == "too_short_notice"


def test_full_lifecycle_with_outbox(store) -> None:
    publish(store)
    b = bk.create_booking(store, "user-1", "expert-1", at(10), 75, "audio_call", topic="tax", now=NOW)
    assert (b.status, b.price_cents, b.end) == ("pending", 7500, at(11, 15))
    with pytest.raises(NotFound):
        bk.get_booking(store, "stranger", b.id)
    with pytest.raises(NotFound):
        bk.confirm_booking(store, "stranger", b.id, now=NOW)
    with pytest.raises(Forbidden):
        bk.confirm_booking(store, "user-1", b.id, now=NOW)
    b = bk.confirm_booking(store, "expert-1", b.id, now=NOW)
    with pytest.raises(InvalidState):
        bk.confirm_booking(store, "expert-1", b.id, now=NOW)
    # The user moves it: back to pending (no autoConfirm), same id, sequence up.
    moved = bk.reschedule_booking(store, "user-1", b.id, at(14), now=NOW)
    assert (moved.id, moved.start, moved.status, moved.sequence) == (b.id, at(14), "pending", 1)
    # Rescheduling onto itself overlapping its own old range is fine (it ignores itself).
    moved = bk.reschedule_booking(store, "expert-1", b.id, at(14, 30), now=NOW)
    assert moved.status == "pending"
    b = bk.confirm_booking(store, "expert-1", b.id, now=NOW)
    with pytest.raises(Forbidden):
        bk.mark_no_show(store, "user-1", b.id, now=at(15))
    b = bk.mark_no_show(store, "expert-1", b.id, now=at(15))
    assert b.status == "no_show"
    assert events(store) == [
        "booking.created", "booking.confirmed", "booking.rescheduled", "booking.rescheduled",
        "booking.confirmed", "booking.no_show",
    ]
    fresh = bk.get_booking(store, "user-1", b.id)
    assert fresh.version == b.version and fresh.status == "no_show" and fresh.topic == "tax"


def test_auto_confirm_and_conflicts(store) -> None:
    publish(store, autoConfirm=True)
    a = bk.create_booking(store, "u1", "expert-1", at(10), 60, "video_call", now=NOW)
    assert a.status == "confirmed"
    with pytest.raises(SlotUnavailable):
        bk.create_booking(store, "u2", "expert-1", at(11, 14), 60, "video_call", now=NOW)
    b = bk.create_booking(store, "u2", "expert-1", at(11, 15), 60, "video_call", now=NOW)
    with pytest.raises(SlotUnavailable):
        bk.reschedule_booking(store, "u2", b.id, at(10, 30), now=NOW)
    assert bk.get_booking(store, "u2", b.id).start == at(11, 15)
    moved = bk.reschedule_booking(store, "u2", b.id, at(13), now=NOW)
    assert moved.status == "confirmed"  # autoConfirm keeps a user's reschedule confirmed
    # Cancelled bookings free their slot.
    bk.cancel_booking(store, "u1", a.id, "sorry", now=NOW)
    bk.create_booking(store, "u3", "expert-1", at(10), 60, "video_call", now=NOW)


def test_busy_blocks_block_slots_and_bookings(store) -> None:
    publish(store)
    with store.write() as conn:
        conn.execute(insert(busy_blocks).values(
            expert_id="expert-1", connection_id=None, calendar_id="cal", external_id="ev1",
            start_time=at(12), end_time=at(13)))
    slots = {s.start: s.status for s in av.get_slots(store, "expert-1", TUE, 60, now=NOW).slots}
    assert slots[at(11)] == "booked" and slots[at(13)] == "booked" and slots[at(13, 30)] == "available"
    with pytest.raises(SlotUnavailable):
        bk.create_booking(store, "u", "expert-1", at(12, 30), 60, "video_call", now=NOW)
    busy = av.get_busy(store, "expert-1", at(0), at(23))
    assert busy == [(at(12), at(13))]
    month = dict(av.get_month(store, "expert-1", 2030, 3, now=NOW))
    assert month[TUE] == "partial" and month[date(2030, 3, 6)] == "available"
    assert month[date(2030, 3, 3)] == "unavailable"


def test_list_bookings_with_cursor(store) -> None:
    publish(store)
    made = [bk.create_booking(store, "u", "expert-1", at(9 + 2 * i), 60, "video_call", now=NOW) for i in range(4)]
    page, cursor = bk.list_bookings(store, "u", "user", limit=3)
    assert [b.id for b in page] == [b.id for b in made[:3]] and cursor
    rest, cursor2 = bk.list_bookings(store, "u", "user", cursor=cursor, limit=3)
    assert [b.id for b in rest] == [made[3].id] and cursor2 is None
    as_expert, _ = bk.list_bookings(store, "expert-1", "expert", statuses=["pending"], start_from=at(11))
    assert [b.id for b in as_expert] == [b.id for b in made[1:]]
    assert bk.list_bookings(store, "stranger", "user")[0] == []
    with pytest.raises(ValidationError):
        bk.list_bookings(store, "u", "user", cursor="garbage!")
    with pytest.raises(ValidationError):
        bk.list_bookings(store, "u", "admin")


def test_jobs_complete_and_expire(store) -> None:
    publish(store)
    pending = bk.create_booking(store, "u", "expert-1", at(9), 60, "video_call", now=NOW)
    confirmed = bk.create_booking(store, "u", "expert-1", at(11), 60, "video_call", now=NOW)
    bk.confirm_booking(store, "expert-1", confirmed.id, now=NOW)
    assert bk.expire_unconfirmed_bookings(store, now=at(8, 59)) == 0
    assert bk.expire_unconfirmed_bookings(store, now=at(9)) == 1
    assert bk.expire_unconfirmed_bookings(store, now=at(9)) == 0  # idempotent
    assert bk.get_booking(store, "u", pending.id).cancellation_reason == "not_confirmed_in_time"
    assert bk.complete_due_bookings(store, now=at(11, 59)) == 0
    assert bk.complete_due_bookings(store, now=at(12)) == 1
    assert bk.get_booking(store, "u", confirmed.id).status == "completed"
    assert bk.audit_conflicts(store) == []


def test_requests_accept_reject_withdraw_expire(store) -> None:
    publish(store)
    starts = [at(10), at(12)]
    r = rq.create_request(store, "u", "expert-1", 60, "video_call", starts, "hello", now=NOW)
    assert r.expires_at == at(10) and r.status == "pending"  # the earliest proposed start comes first
    with pytest.raises(DurationTooShort):
        rq.create_request(store, "u", "expert-1", 30, "video_call", starts, now=NOW)
    # Proposed slots do not block availability.
    other = bk.create_booking(store, "v", "expert-1", at(10), 60, "video_call", now=NOW)
    with pytest.raises(Forbidden):
        rq.respond_to_request(store, "u", r.id, True, 0, now=NOW)
    with pytest.raises(NotFound):
        rq.respond_to_request(store, "stranger", r.id, True, 0, now=NOW)
    with pytest.raises(SlotUnavailable):
        rq.respond_to_request(store, "expert-1", r.id, True, 0, now=NOW)
    assert rq.get_request(store, "u", r.id).status == "pending"  # nothing half-written
    accepted = rq.respond_to_request(store, "expert-1", r.id, True, 1, "see you", now=NOW)
    assert accepted.status == "accepted" and accepted.accepted_index == 1
    booking = bk.get_booking(store, "u", accepted.booking_id)
    assert booking.status == "confirmed" and booking.start == at(12)
    with pytest.raises(InvalidState):
        rq.respond_to_request(store, "expert-1", r.id, False, now=NOW)
    r2 = rq.create_request(store, "u", "expert-1", 60, "video_call", [at(15)], now=NOW)
    rq.respond_to_request(store, "expert-1", r2.id, False, message="no", now=NOW)
    r3 = rq.create_request(store, "u", "expert-1", 60, "video_call", [at(15)], now=NOW)
    with pytest.raises(Forbidden):
        rq.withdraw_request(store, "expert-1", r3.id, now=NOW)
    assert rq.withdraw_request(store, "u", r3.id, now=NOW).status == "withdrawn"
    r4 = rq.create_request(store, "u", "expert-1", 60, "video_call", [at(16)], now=NOW)
    assert rq.expire_requests(store, now=r4.expires_at - timedelta(seconds=1)) == 0
    assert rq.expire_requests(store, now=r4.expires_at) == 1
    assert rq.get_request(store, "expert-1", r4.id).status == "expired"
    mine, _ = rq.list_requests(store, "u", "user")
    assert {x.id for x in mine} == {r.id, r2.id, r3.id, r4.id}
    assert "booking_request.accepted" in events(store) and "booking_request.expired" in events(store)
    del other


def test_profile(store) -> None:
    assert users.update_profile(store, "u", email="a@b.c", display_name="Ann", timezone="Europe/Berlin")["timezone"]
    with pytest.raises(ValidationError):
        users.update_profile(store, "u", timezone="Atlantis/Capital")
    # An expert's timezone is the default for unpublished settings.
    assert av.get_availability(store, "u").timezone == "Europe/Berlin"


def test_a_listed_slot_is_bookable_at_the_same_instant(store) -> None:
    """docs/domain.md#notice-and-advance: one rule for the listing and the booking."""
    publish(store)  # minNoticeMinutes 0
    now = at(10)
    listed = [s.start for s in av.get_slots(store, "expert-1", TUE, 60, now=now).slots]
    assert at(10) not in listed and listed[0] == at(10, 30)
    with pytest.raises(BookingError) as err:
        bk.create_booking(store, "user-1", "expert-1", at(10), 60, "video_call", now=now)
    assert err.value.code == "in_the_past"
    assert bk.create_booking(store, "user-1", "expert-1", listed[0], 60, "video_call", now=now).start == at(10, 30)


def test_zero_length_busy_time_from_a_pull_is_not_stored_and_blocks_nothing(store) -> None:
    """docs/domain.md#busy-times, on the pull path: a calendar event with equal start and end."""
    from booking_engine.services import calendar_sync, connections

    publish(store)
    feed = "https://feeds.example/team.ics"
    made = connections.create_connection(
        store, "expert-1", "expert-1", "ics", account=None, credentials=None, busy_calendars=[feed],
        destination_calendar=None, extra_config={"url": feed}, now=NOW,
    )
    booking = bk.create_booking(store, "user-1", "expert-1", at(10), 60, "video_call", now=NOW)
    written = calendar_sync.apply_pull(
        store, made.id, feed, full=True, upserts={"zero": [(at(11, 5), at(11, 5))], "one": [(at(14), at(15))]},
        deleted=[], cursor={"v": 1}, now=NOW,
    )
    assert written == 1
    with store.read() as conn:
        assert [r[0] for r in conn.execute(select(busy_blocks.c.external_id))] == ["one"]
    # Within the 15-minute buffer of the booking, yet no conflict and no busy time.
    assert calendar_sync.flag_conflicts(store, "expert-1", now=NOW) == []
    assert not bk.get_booking(store, "user-1", booking.id).has_conflict
    assert av.get_busy(store, "expert-1", at(0), at(23)) == [(at(10), at(11)), (at(14), at(15))]
    slots = {s.start: s.status for s in av.get_slots(store, "expert-1", TUE, 60, now=NOW).slots}
    assert slots[at(11, 30)] == "available"


def test_a_refusal_because_of_the_buffer_says_so(store) -> None:
    publish(store, bufferBetweenBookingsMinutes=15)
    bk.create_booking(store, "u1", "expert-1", at(10), 60, "video_call", now=NOW)
    with pytest.raises(SlotUnavailable) as err:
        bk.create_booking(store, "u2", "expert-1", at(11, 10), 60, "video_call", now=NOW)
    assert err.value.code == "slot_unavailable"
    assert "within the expert's 15-minute buffer of another booking" in err.value.detail
    with pytest.raises(SlotUnavailable) as err:
        bk.create_booking(store, "u2", "expert-1", at(10, 30), 60, "video_call", now=NOW)
    assert "buffer" not in err.value.detail


def test_reads_for_a_user_about_an_expert_nobody_knows_are_not_found(store) -> None:
    """docs/domain.md#experts: ``asked_by`` makes a read a user's; internal reads get the defaults."""
    reads = [
        lambda **kw: av.get_availability(store, "nobody", **kw),
        lambda **kw: av.list_exceptions(store, "nobody", TUE, TUE, **kw),
        lambda **kw: av.get_slots(store, "nobody", TUE, 60, now=NOW, **kw),
        lambda **kw: av.get_slots_range(store, "nobody", TUE, TUE, 60, now=NOW, **kw),
        lambda **kw: av.get_month(store, "nobody", 2030, 3, now=NOW, **kw),
        lambda **kw: av.get_busy(store, "nobody", at(0), at(23), **kw),
    ]
    for read in reads:
        with pytest.raises(NotFound):
            read(asked_by="user-1")
        read(asked_by="nobody")  # the expert about themselves
        read()  # the worker asking for a timezone
    with pytest.raises(NotFound):
        rq.create_request(store, "user-1", "nobody", 60, "video_call", [at(10)], now=NOW)
    with store.read() as conn:
        assert user_rows.get_user(conn, "nobody") is None  # asking did not make them known


def test_a_cancel_or_withdraw_for_an_older_version_changes_nothing(store) -> None:
    """A page's form names the version it was made from (docs/web.md#versions): if the booking or
    the request changed since, the service refuses under its row lock and writes nothing."""
    publish(store)
    booking = bk.create_booking(store, "u", "expert-1", at(10), 60, "video_call", now=NOW)
    seen = booking.version
    bk.confirm_booking(store, "expert-1", booking.id, now=NOW)  # the expert acts meanwhile
    with pytest.raises(PreconditionFailed):
        bk.cancel_booking(store, "u", booking.id, "plans changed", now=NOW, expected_version=seen)
    now_stored = bk.get_booking(store, "u", booking.id)
    assert now_stored.status == "confirmed" and now_stored.version == seen + 1
    cancelled = bk.cancel_booking(store, "u", booking.id, "plans changed", now=NOW,
                                 expected_version=now_stored.version)
    assert cancelled.status == "cancelled"

    request = rq.create_request(store, "u", "expert-1", 60, "video_call", [at(15)], now=NOW)
    with pytest.raises(PreconditionFailed):
        rq.withdraw_request(store, "u", request.id, now=NOW, expected_version=request.version - 1)
    assert rq.get_request(store, "u", request.id).status == "pending"
    assert rq.withdraw_request(store, "u", request.id, now=NOW, expected_version=request.version).status == "withdrawn"
