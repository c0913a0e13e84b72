"""The expert's booking policies on plain entities: the payment hold, refunds due, the change cut-off,
the reschedule limit and the daily and weekly limits (docs/lifecycle.md, docs/domain.md#booking-limits)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from booking_engine import lifecycle
from booking_engine.errors import (
    BookingLimitReached,
    ChangeWindowClosed,
    InvalidState,
    PaymentAmountMismatch,
    PaymentRequired,
    RescheduleLimitReached,
    ValidationError,
)
from booking_engine.model import AvailabilitySettings, Booking, BookingStatus, BookingType, CancelledBy, PaymentStatus
from booking_engine.policies import BookingCounts, payment_due_at

START = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)
BOOKED = START - timedelta(days=2)
DUE = BOOKED + timedelta(minutes=15)


def booking(status: BookingStatus = BookingStatus.PENDING, payment: PaymentStatus = PaymentStatus.NOT_REQUIRED,
            **extra: Any) -> Booking:
    b = Booking(
        id="b1", expert_id="e", user_id="u", start=START, duration=60, type=BookingType.VIDEO_CALL,
        status=status, price_cents=6000, currency="EUR", buffer=15, created_at=BOOKED, payment_status=payment,
        payment_due_at=DUE if payment == PaymentStatus.AWAITING_PAYMENT else None, **extra,
    )
    return b


def on_hold() -> Booking:
    return booking(payment=PaymentStatus.AWAITING_PAYMENT)


def types(b: Booking) -> list[str]:
    return [e.type for e in b.events]


# --- payment hold --------------------------------------------------------------------------


def test_the_hold_ends_after_its_minutes_but_never_after_the_start() -> None:
    assert payment_due_at(BOOKED, START, 15) == BOOKED + timedelta(minutes=15)
    assert payment_due_at(START - timedelta(minutes=10), START, 15) == START


def test_a_payment_is_recorded_once_and_the_same_payment_again_changes_nothing() -> None:
    b = on_hold()
    assert lifecycle.record_payment(b, "pay_1", 6000, "EUR", DUE - timedelta(microseconds=1), confirm_on_payment=False)
    assert b.payment_status == PaymentStatus.PAID and b.payment_id == "pay_1" and b.status == BookingStatus.PENDING
    assert types(b) == ["booking.paid"] and b.version == 2
    assert not lifecycle.record_payment(b, "pay_1", 6000, "EUR", DUE, confirm_on_payment=False)
    assert types(b) == ["booking.paid"] and b.version == 2
    with pytest.raises(InvalidState):
        lifecycle.record_payment(b, "pay_2", 6000, "EUR", DUE, confirm_on_payment=False)


def test_with_confirm_on_payment_the_payment_confirms() -> None:
    b = on_hold()
    lifecycle.record_payment(b, "pay_1", 7000, "EUR", BOOKED, confirm_on_payment=True)
    assert b.status == BookingStatus.CONFIRMED and b.confirmed_at == BOOKED
    assert types(b) == ["booking.paid", "booking.confirmed"]


@pytest.mark.parametrize(("amount", "currency"), [(5999, "EUR"), (0, "EUR"), (6000, "USD")])
def test_a_payment_below_the_price_or_in_another_currency_is_a_mismatch(amount: int, currency: str) -> None:
    b = on_hold()
    with pytest.raises(PaymentAmountMismatch):
        lifecycle.record_payment(b, "pay_1", amount, currency, BOOKED, confirm_on_payment=False)
    assert b.payment_status == PaymentStatus.AWAITING_PAYMENT and not b.events


def test_no_payment_at_the_due_time_or_for_a_booking_never_on_hold() -> None:
    with pytest.raises(InvalidState):
        lifecycle.record_payment(on_hold(), "pay_1", 6000, "EUR", DUE, confirm_on_payment=False)
    with pytest.raises(InvalidState):
        lifecycle.record_payment(booking(), "pay_1", 6000, "EUR", BOOKED, confirm_on_payment=False)


def test_the_expert_confirms_only_a_paid_booking() -> None:
    b = on_hold()
    with pytest.raises(PaymentRequired) as refused:
        lifecycle.confirm(b, BOOKED)
    assert refused.value.code == "payment_required" and refused.value.status == 409
    lifecycle.record_payment(b, "pay_1", 6000, "EUR", BOOKED, confirm_on_payment=False)
    lifecycle.confirm(b, BOOKED)
    assert b.status == BookingStatus.CONFIRMED


def test_the_hold_expires_at_its_due_time_not_before() -> None:
    b = on_hold()
    with pytest.raises(InvalidState):
        lifecycle.expire_payment(b, DUE - timedelta(microseconds=1))
    lifecycle.expire_payment(b, DUE)
    assert b.status == BookingStatus.CANCELLED and b.cancelled_by == CancelledBy.SYSTEM
    assert b.cancellation_reason == "payment_not_received" and b.payment_status == PaymentStatus.UNPAID
    assert b.refund_cents == 0 and types(b) == ["booking.cancelled", "booking.payment_expired"]
    paid = on_hold()
    lifecycle.record_payment(paid, "pay_1", 6000, "EUR", BOOKED, confirm_on_payment=False)
    with pytest.raises(InvalidState):
        lifecycle.expire_payment(paid, DUE)


def test_a_user_reschedule_under_auto_confirm_does_not_confirm_an_unpaid_booking() -> None:
    b = on_hold()
    lifecycle.reschedule(b, START - timedelta(days=1, hours=23, minutes=50), CancelledBy.USER, True, BOOKED)
    assert b.status == BookingStatus.PENDING and b.awaiting_payment
    assert b.payment_due_at == b.start  # the hold never outlasts the start


# --- refunds ---------------------------------------------------------------------------------


def test_cancelling_a_paid_booking_makes_one_refund_due() -> None:
    b = on_hold()
    lifecycle.record_payment(b, "pay_1", 6000, "EUR", BOOKED, confirm_on_payment=True)
    b.events.clear()
    lifecycle.cancel(b, CancelledBy.USER, "cannot make it", START - timedelta(hours=3))
    assert b.refund_cents == 3000
    assert types(b) == ["booking.cancelled", "booking.refund_due"]
    due = b.events[1].payload
    assert (due["paymentId"], due["refundCents"], due["currency"]) == ("pay_1", 3000, "EUR")
    with pytest.raises(InvalidState):
        lifecycle.cancel(b, CancelledBy.EXPERT, "again", START - timedelta(hours=3))
    assert types(b) == ["booking.cancelled", "booking.refund_due"]


def test_no_refund_is_due_when_nothing_was_paid_or_nothing_comes_back() -> None:
    unpaid = on_hold()
    lifecycle.cancel(unpaid, CancelledBy.EXPERT, "sick", BOOKED)
    assert unpaid.refund_cents == 0 and types(unpaid) == ["booking.cancelled"]
    late = on_hold()
    lifecycle.record_payment(late, "pay_1", 6000, "EUR", BOOKED, confirm_on_payment=True)
    lifecycle.cancel(late, CancelledBy.USER, "late", START - timedelta(minutes=30))
    assert late.refund_cents == 0 and "booking.refund_due" not in types(late)
    unpriced = booking(BookingStatus.CONFIRMED)
    lifecycle.cancel(unpriced, CancelledBy.EXPERT, "sick", BOOKED)
    assert unpriced.refund_cents == 6000 and "booking.refund_due" not in types(unpriced)  # never paid through us


# --- change cut-off and reschedule limit -----------------------------------------------------


@pytest.mark.parametrize(("ahead", "open_"), [
    (timedelta(minutes=120), True),
    (timedelta(minutes=120) - timedelta(microseconds=1), False),
    (timedelta(minutes=1), False),
])
def test_the_user_changes_until_exactly_the_cutoff(ahead: timedelta, open_: bool) -> None:
    now = START - ahead
    for change in (
        lambda b: lifecycle.cancel(b, CancelledBy.USER, "r", now, cutoff_minutes=120),
        lambda b: lifecycle.reschedule(b, START + timedelta(days=1), CancelledBy.USER, False, now, cutoff_minutes=120),
    ):
        b = booking(BookingStatus.CONFIRMED)
        if open_:
            change(b)
        else:
            with pytest.raises(ChangeWindowClosed) as closed:
                change(b)
            assert closed.value.code == "change_window_closed" and closed.value.status == 409
            assert b.status == BookingStatus.CONFIRMED and not b.events


def test_the_expert_changes_inside_the_cutoff_and_no_cutoff_means_none() -> None:
    now = START - timedelta(minutes=5)
    lifecycle.cancel(booking(BookingStatus.CONFIRMED), CancelledBy.EXPERT, "r", now, cutoff_minutes=120)
    lifecycle.reschedule(booking(BookingStatus.CONFIRMED), START + timedelta(days=1), CancelledBy.EXPERT, False, now,
                         cutoff_minutes=120)
    lifecycle.cancel(booking(BookingStatus.CONFIRMED), CancelledBy.USER, "r", now, cutoff_minutes=0)


def test_the_user_reschedules_as_often_as_allowed_and_every_reschedule_counts() -> None:
    b = booking(BookingStatus.CONFIRMED)
    for n in range(2):
        lifecycle.reschedule(b, START + timedelta(days=n + 1), CancelledBy.USER, True, BOOKED, max_reschedules=2)
    assert b.reschedule_count == 2
    with pytest.raises(RescheduleLimitReached) as refused:
        lifecycle.reschedule(b, START + timedelta(days=5), CancelledBy.USER, True, BOOKED, max_reschedules=2)
    assert refused.value.code == "reschedule_limit_reached" and b.reschedule_count == 2
    lifecycle.reschedule(b, START + timedelta(days=6), CancelledBy.EXPERT, True, BOOKED, max_reschedules=2)
    assert b.reschedule_count == 3
    with pytest.raises(RescheduleLimitReached):
        lifecycle.reschedule(booking(), START + timedelta(days=1), CancelledBy.USER, True, BOOKED, max_reschedules=0)


# --- daily and weekly limits -------------------------------------------------------------------


def test_a_day_is_full_at_its_limit_in_the_experts_local_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 23:30 UTC on 9 June is 01:30 on 10 June in Berlin: it counts for the 10th there.
    starts = [datetime(2030, 6, 10, 8, tzinfo=UTC), datetime(2030, 6, 9, 23, 30, tzinfo=UTC)]
    counts = BookingCounts.of(starts, berlin, max_per_day=2, max_per_week=None)
    assert counts.full(date(2030, 6, 10)) == "day" and counts.full(date(2030, 6, 9)) is None
    with pytest.raises(BookingLimitReached) as refused:
        counts.check(date(2030, 6, 10))
    assert refused.value.code == "booking_limit_reached" and refused.value.status == 409
    counts.check(date(2030, 6, 9))
    assert BookingCounts.of(starts, UTC, 2, None).full(date(2030, 6, 10)) is None


def test_a_week_is_the_iso_week_monday_to_sunday() -> None:
    # 2030-06-10 is a Monday; 2030-06-16 the Sunday of that week, 2030-06-17 the next Monday.
    starts = [datetime(2030, 6, 10, 9, tzinfo=UTC), datetime(2030, 6, 16, 9, tzinfo=UTC)]
    counts = BookingCounts.of(starts, UTC, max_per_day=None, max_per_week=2)
    assert counts.full(date(2030, 6, 13)) == "week" and counts.full(date(2030, 6, 17)) is None
    assert counts.full(date(2030, 6, 9)) is None
    with pytest.raises(BookingLimitReached, match="2030-W24"):
        counts.check(date(2030, 6, 12))
    assert BookingCounts.of(starts, UTC, None, None).full(date(2030, 6, 10)) is None


# --- the settings document -----------------------------------------------------------------------


def test_the_new_settings_round_trip_with_their_defaults() -> None:
    defaults = AvailabilitySettings.from_dict("e", {})
    got = defaults.as_dict()
    assert (got["paymentRequired"], got["paymentHoldMinutes"], got["changeCutoffMinutes"]) == (False, 15, 0)
    assert (got["maxReschedulesPerBooking"], got["maxBookingsPerDay"], got["maxBookingsPerWeek"]) == (None,) * 3
    body = {"paymentRequired": True, "paymentHoldMinutes": 30, "changeCutoffMinutes": 1440,
            "maxReschedulesPerBooking": 0, "maxBookingsPerDay": 3, "maxBookingsPerWeek": 10}
    parsed = AvailabilitySettings.from_dict("e", body).as_dict()
    assert {k: parsed[k] for k in body} == body


@pytest.mark.parametrize(("name", "value"), [
    ("paymentRequired", "yes"), ("paymentHoldMinutes", 4), ("paymentHoldMinutes", 1441), ("paymentHoldMinutes", None),
    ("changeCutoffMinutes", -1), ("changeCutoffMinutes", 43201), ("maxReschedulesPerBooking", -1),
    ("maxReschedulesPerBooking", 101), ("maxBookingsPerDay", 0), ("maxBookingsPerWeek", 0),
    ("maxBookingsPerDay", True), ("maxBookingsPerWeek", 1.5),
])
def test_bad_new_settings_are_validation_errors_on_their_field(name: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        AvailabilitySettings.from_dict("e", {name: value})
    assert refused.value.extra["field"] == name


def test_a_full_day_offers_no_slots_and_the_month_shows_it_unavailable() -> None:
    from booking_engine import availability as engine
    from booking_engine.model import DaySchedule, Window

    week = {d: DaySchedule(True, (Window(9 * 60, 17 * 60),)) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    settings = AvailabilitySettings("e", weekly=week, buffer=0, advance_days=365, max_per_day=1)
    now = datetime(2030, 6, 1, tzinfo=UTC)
    busy = engine.BusyIndex.from_micros([])
    counts = BookingCounts.of([datetime(2030, 6, 10, 9, tzinfo=UTC)], UTC, 1, None)
    assert engine.slots_for_date(settings, {}, busy, date(2030, 6, 10), 60, now, counts=counts) == []
    assert engine.slots_for_date(settings, {}, busy, date(2030, 6, 11), 60, now, counts=counts)
    month = dict(engine.month_view(settings, {}, busy, 2030, 6, now, counts=counts))
    assert month[date(2030, 6, 10)] == "unavailable" and month[date(2030, 6, 11)] == "available"
    with pytest.raises(BookingLimitReached):
        engine.check_bookable(settings, {}, busy, datetime(2030, 6, 10, 14, tzinfo=UTC), 60, now, counts)
    engine.check_bookable(settings, {}, busy, datetime(2030, 6, 11, 14, tzinfo=UTC), 60, now, counts)
