"""Lifecycle transitions, the refund policy and request defaults (docs/lifecycle.md), on plain entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from booking_engine import booking_requests as requests_domain
from booking_engine import lifecycle
from booking_engine.errors import InThePast, InvalidState, ValidationError
from booking_engine.model import Booking, BookingStatus, BookingType, CancelledBy, RequestStatus
from booking_engine.policies import refund_percent

START = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)


def booking(status: BookingStatus = BookingStatus.PENDING, price: int = 10001) -> Booking:
    return Booking(
        id="b1", expert_id="e", user_id="u", start=START, duration=60, type=BookingType.VIDEO_CALL,
        status=status, price_cents=price, currency="USD", buffer=15, created_at=START - timedelta(days=5),
    )


@pytest.mark.parametrize(
    ("before", "percent"),
    [
        (timedelta(hours=48), 100),
        (timedelta(hours=24), 100),
        (timedelta(hours=24) - timedelta(seconds=1), 50),
        (timedelta(hours=2), 50),
        (timedelta(hours=2) - timedelta(seconds=1), 0),
        (timedelta(minutes=1), 0),
    ],
)
def test_user_refund_tiers_at_their_boundaries(before: timedelta, percent: int) -> None:
    assert refund_percent(CancelledBy.USER, START, START - before) == percent
    b = booking(BookingStatus.CONFIRMED, price=10001)
    lifecycle.cancel(b, CancelledBy.USER, "changed my mind", START - before)
    assert b.refund_cents == {100: 10001, 50: 5001, 0: 0}[percent]  # 5000.5 rounds half up
    assert b.status == BookingStatus.CANCELLED and b.cancelled_by == CancelledBy.USER


@pytest.mark.parametrize("by", [CancelledBy.EXPERT, CancelledBy.SYSTEM])
def test_expert_and_system_cancellations_refund_everything(by: CancelledBy) -> None:
    b = booking(BookingStatus.CONFIRMED)
    lifecycle.cancel(b, by, "emergency", START - timedelta(minutes=5))
    assert b.refund_cents == b.price_cents


ALL = list(BookingStatus)
BEFORE = START - timedelta(hours=1)
AFTER_START = START + timedelta(minutes=10)
AFTER_END = START + timedelta(hours=2)


@pytest.mark.parametrize("status", ALL)
def test_confirm_only_pending(status: BookingStatus) -> None:
    b = booking(status)
    if status == BookingStatus.PENDING:
        lifecycle.confirm(b, BEFORE)
        assert b.status == BookingStatus.CONFIRMED and b.confirmed_at == BEFORE
        assert [e.type for e in b.events] == ["booking.confirmed"] and b.version == 2
    else:
        with pytest.raises(InvalidState):
            lifecycle.confirm(b, BEFORE)
        assert b.events == [] and b.version == 1


@pytest.mark.parametrize("status", ALL)
def test_decline_only_pending_and_needs_a_reason(status: BookingStatus) -> None:
    b = booking(status)
    with pytest.raises(ValidationError):
        lifecycle.decline(b, "  ", BEFORE)
    if status == BookingStatus.PENDING:
        lifecycle.decline(b, "busy", BEFORE)
        assert b.status == BookingStatus.CANCELLED and b.cancelled_by == CancelledBy.EXPERT
        assert b.events[0].payload["declined"] is True
    else:
        with pytest.raises(InvalidState):
            lifecycle.decline(b, "busy", BEFORE)


@pytest.mark.parametrize("status", ALL)
def test_cancel_pending_or_confirmed_before_start(status: BookingStatus) -> None:
    b = booking(status)
    if status in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
        with pytest.raises(InvalidState):
            lifecycle.cancel(booking(status), CancelledBy.USER, "late", START)
        with pytest.raises(ValidationError):
            lifecycle.cancel(b, CancelledBy.USER, None, BEFORE)
        lifecycle.cancel(b, CancelledBy.USER, "ok", BEFORE)
        assert b.status == BookingStatus.CANCELLED
    else:
        with pytest.raises(InvalidState):
            lifecycle.cancel(b, CancelledBy.USER, "ok", BEFORE)


@pytest.mark.parametrize("status", ALL)
@pytest.mark.parametrize("by", [CancelledBy.USER, CancelledBy.EXPERT])
@pytest.mark.parametrize("auto", [False, True])
def test_reschedule_status_rules(status: BookingStatus, by: CancelledBy, auto: bool) -> None:
    b = booking(status)
    new = START + timedelta(days=1)
    if status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
        with pytest.raises(InvalidState):
            lifecycle.reschedule(b, new, by, auto, BEFORE)
        return
    with pytest.raises(InvalidState):
        lifecycle.reschedule(booking(status), new, by, auto, START)
    lifecycle.reschedule(b, new, by, auto, BEFORE)
    assert b.start == new and b.sequence == 1 and b.id == "b1"
    if by == CancelledBy.EXPERT:
        assert b.status == status
    else:
        assert b.status == (BookingStatus.CONFIRMED if auto else BookingStatus.PENDING)
    assert b.events[-1].type == "booking.rescheduled"


@pytest.mark.parametrize("status", ALL)
def test_no_show_only_confirmed_after_start(status: BookingStatus) -> None:
    b = booking(status)
    if status == BookingStatus.CONFIRMED:
        with pytest.raises(InvalidState):
            lifecycle.no_show(b, BEFORE)
        lifecycle.no_show(b, START)
        assert b.status == BookingStatus.NO_SHOW
    else:
        with pytest.raises(InvalidState):
            lifecycle.no_show(b, AFTER_START)


@pytest.mark.parametrize("status", ALL)
def test_complete_only_confirmed_after_end(status: BookingStatus) -> None:
    b = booking(status)
    if status == BookingStatus.CONFIRMED:
        with pytest.raises(InvalidState):
            lifecycle.complete(b, AFTER_START)
        lifecycle.complete(b, START + timedelta(hours=1))
        assert b.status == BookingStatus.COMPLETED
    else:
        with pytest.raises(InvalidState):
            lifecycle.complete(b, AFTER_END)


@pytest.mark.parametrize("status", ALL)
def test_unconfirmed_expiry(status: BookingStatus) -> None:
    b = booking(status)
    if status == BookingStatus.PENDING:
        with pytest.raises(InvalidState):
            lifecycle.expire_unconfirmed(b, BEFORE)
        lifecycle.expire_unconfirmed(b, START)
        assert b.status == BookingStatus.CANCELLED and b.cancelled_by == CancelledBy.SYSTEM
        assert b.cancellation_reason == "not_confirmed_in_time" and b.refund_cents == b.price_cents
    else:
        with pytest.raises(InvalidState):
            lifecycle.expire_unconfirmed(b, AFTER_END)


# --- requests ---------------------------------------------------------------------------------

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def test_request_expiry_defaults_to_48h_or_the_earliest_slot() -> None:
    far = [NOW + timedelta(days=5), NOW + timedelta(days=3)]
    r = requests_domain.new_request("e", "u", 60, BookingType.AUDIO_CALL, far, None, NOW)
    assert r.expires_at == NOW + timedelta(hours=48)
    near = [NOW + timedelta(days=5), NOW + timedelta(hours=10)]
    r = requests_domain.new_request("e", "u", 60, BookingType.AUDIO_CALL, near, "hi", NOW)
    assert r.expires_at == NOW + timedelta(hours=10)
    assert r.events[0].type == "booking_request.created"


@pytest.mark.parametrize("count", [0, 6])
def test_request_needs_one_to_five_slots(count: int) -> None:
    starts = [NOW + timedelta(days=i + 1) for i in range(count)]
    with pytest.raises(ValidationError):
        requests_domain.new_request("e", "u", 60, BookingType.AUDIO_CALL, starts, None, NOW)


def test_request_slot_in_the_past_or_duplicate() -> None:
    with pytest.raises(InThePast):
        requests_domain.new_request("e", "u", 60, BookingType.AUDIO_CALL, [NOW], None, NOW)
    dup = [NOW + timedelta(days=1)] * 2
    with pytest.raises(ValidationError):
        requests_domain.new_request("e", "u", 60, BookingType.AUDIO_CALL, dup, None, NOW)


def test_request_transitions() -> None:
    r = requests_domain.new_request("e", "u", 60, BookingType.IN_PERSON, [NOW + timedelta(days=1)], None, NOW)
    with pytest.raises(ValidationError):
        requests_domain.chosen_start(r, 3, NOW)
    assert requests_domain.chosen_start(r, 0, NOW) == NOW + timedelta(days=1)
    with pytest.raises(InvalidState):
        requests_domain.chosen_start(r, 0, r.expires_at)  # expired requests cannot be accepted
    with pytest.raises(InvalidState):
        requests_domain.expire(r, r.expires_at - timedelta(seconds=1))
    requests_domain.expire(r, r.expires_at)
    assert r.status == RequestStatus.EXPIRED
    with pytest.raises(InvalidState):
        requests_domain.withdraw(r, NOW)
    with pytest.raises(InvalidState):
        requests_domain.reject(r, None, NOW)
    w = requests_domain.new_request("e", "u", 60, BookingType.IN_PERSON, [NOW + timedelta(days=1)], None, NOW)
    requests_domain.withdraw(w, NOW)
    assert w.status == RequestStatus.WITHDRAWN
