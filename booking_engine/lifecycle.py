"""Booking state transitions (docs/lifecycle.md) on the plain ``Booking`` entity.

Each transition checks the current status (``invalid_state`` otherwise), changes the
booking, bumps its version and records the domain event the outbox will carry. Who may
call which transition is decided by the service layer, which knows the actor.
"""

from __future__ import annotations

from datetime import datetime

from booking_engine.errors import InvalidState, ValidationError
from booking_engine.model import Booking, BookingStatus, CancelledBy
from booking_engine.policies import refund_cents, refund_percent

MAX_REASON_LENGTH = 1000
NOT_CONFIRMED_IN_TIME = "not_confirmed_in_time"


def _require(booking: Booking, allowed: set[BookingStatus], action: str) -> None:
    if booking.status not in allowed:
        raise InvalidState(f"cannot {action} a {booking.status} booking", status=str(booking.status))


def _reason(reason: str | None) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a reason is required", field="reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(f"reason is at most {MAX_REASON_LENGTH} characters", field="reason")
    return reason.strip()


def _touch(booking: Booking) -> None:
    booking.version += 1


def confirm(booking: Booking, now: datetime) -> None:
    _require(booking, {BookingStatus.PENDING}, "confirm")
    if booking.start <= now:
        raise InvalidState("the booking has already started")
    booking.status = BookingStatus.CONFIRMED
    booking.confirmed_at = now
    _touch(booking)
    booking.record("booking.confirmed")


def _cancel(booking: Booking, by: CancelledBy, reason: str, now: datetime, **extra: object) -> None:
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by = by
    booking.cancellation_reason = reason
    booking.refund_cents = refund_cents(booking.price_cents, refund_percent(by, booking.start, now))
    _touch(booking)
    booking.record("booking.cancelled", **extra)


def decline(booking: Booking, reason: str | None, now: datetime) -> None:
    text = _reason(reason)
    _require(booking, {BookingStatus.PENDING}, "decline")
    _cancel(booking, CancelledBy.EXPERT, text, now, declined=True)


def cancel(booking: Booking, by: CancelledBy, reason: str | None, now: datetime) -> None:
    text = _reason(reason)
    _require(booking, {BookingStatus.PENDING, BookingStatus.CONFIRMED}, "cancel")
    if booking.start <= now:
        raise InvalidState("the booking has already started")
    _cancel(booking, by, text, now, declined=False)


def ensure_reschedulable(booking: Booking, now: datetime) -> None:
    _require(booking, {BookingStatus.PENDING, BookingStatus.CONFIRMED}, "reschedule")
    if booking.start <= now:
        raise InvalidState("the booking has already started")


def reschedule(booking: Booking, new_start: datetime, by: CancelledBy, auto_confirm: bool, now: datetime) -> None:
    """Move the booking; the caller has validated ``new_start`` as in create (ignoring this booking)."""
    ensure_reschedulable(booking, now)
    previous = booking.start
    previous_status = booking.status
    booking.start = new_start
    booking.sequence += 1
    booking.has_conflict = False
    if by == CancelledBy.USER and not auto_confirm:
        booking.status = BookingStatus.PENDING
        booking.confirmed_at = None
    elif by == CancelledBy.USER and auto_confirm and booking.status == BookingStatus.PENDING:
        booking.status = BookingStatus.CONFIRMED
        booking.confirmed_at = now
    _touch(booking)
    booking.record(
        "booking.rescheduled",
        previousStartTime=previous.isoformat().replace("+00:00", "Z"),
        previousStatus=str(previous_status),
        rescheduledBy=str(by),
    )


def no_show(booking: Booking, now: datetime) -> None:
    _require(booking, {BookingStatus.CONFIRMED}, "mark as no-show")
    if booking.start > now:
        raise InvalidState("a booking can be marked no-show only after its start")
    booking.status = BookingStatus.NO_SHOW
    _touch(booking)
    booking.record("booking.no_show")


def complete(booking: Booking, now: datetime) -> None:
    _require(booking, {BookingStatus.CONFIRMED}, "complete")
    if booking.end > now:
        raise InvalidState("a booking completes only after its end")
    booking.status = BookingStatus.COMPLETED
    _touch(booking)
    booking.record("booking.completed")


def expire_unconfirmed(booking: Booking, now: datetime) -> None:
    _require(booking, {BookingStatus.PENDING}, "expire")
    if booking.start > now:
        raise InvalidState("the booking has not started yet")
    _cancel(booking, CancelledBy.SYSTEM, NOT_CONFIRMED_IN_TIME, now, declined=False)
