"""Booking state transitions (docs/lifecycle.md) on the plain ``Booking`` entity.

Each transition checks the current status (``invalid_state`` otherwise), changes the
booking, bumps its version and records the domain event the outbox will carry. Who may
call which transition is decided by the service layer, which knows the actor.
"""

from __future__ import annotations

from datetime import datetime

from booking_engine.errors import InvalidState, PaymentRequired, ValidationError
from booking_engine.model import Booking, BookingStatus, CancelledBy, PaymentStatus
from booking_engine.policies import (
    check_change_window,
    check_payment,
    check_reschedule_limit,
    refund_cents,
    refund_percent,
)

MAX_REASON_LENGTH = 1000
NOT_CONFIRMED_IN_TIME = "not_confirmed_in_time"
PAYMENT_NOT_RECEIVED = "payment_not_received"


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
    if booking.awaiting_payment:
        raise PaymentRequired("the booking can be confirmed once it is paid")
    booking.status = BookingStatus.CONFIRMED
    booking.confirmed_at = now
    _touch(booking)
    booking.record("booking.confirmed")


def refund_due(booking: Booking, by: CancelledBy, now: datetime) -> int:
    """What cancelling ``booking`` now would refund: the one rule the cancel and its preview share.

    Nothing was paid during a payment hold, so nothing is refunded (docs/lifecycle.md#payment-hold).
    """
    if booking.awaiting_payment:
        return 0
    return refund_cents(booking.price_cents, refund_percent(by, booking.start, now))


def _cancel(booking: Booking, by: CancelledBy, reason: str, now: datetime, **extra: object) -> None:
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by = by
    booking.cancellation_reason = reason
    booking.refund_cents = refund_due(booking, by, now)
    if booking.awaiting_payment:
        booking.payment_status = PaymentStatus.UNPAID
    _touch(booking)
    booking.record("booking.cancelled", **extra)
    if booking.payment_status == PaymentStatus.PAID and booking.refund_cents:
        # The one event the payment back end acts on: written once, with the cancellation
        # (a booking is cancelled at most once), docs/lifecycle.md#refunds.
        booking.record("booking.refund_due", paymentId=booking.payment_id, refundCents=booking.refund_cents,
                       currency=booking.currency)


def decline(booking: Booking, reason: str | None, now: datetime) -> None:
    text = _reason(reason)
    _require(booking, {BookingStatus.PENDING}, "decline")
    _cancel(booking, CancelledBy.EXPERT, text, now, declined=True)


def cancel(
    booking: Booking, by: CancelledBy, reason: str | None, now: datetime, *, cutoff_minutes: int = 0
) -> None:
    text = _reason(reason)
    _require(booking, {BookingStatus.PENDING, BookingStatus.CONFIRMED}, "cancel")
    if booking.start <= now:
        raise InvalidState("the booking has already started")
    check_change_window(by, booking.start, now, cutoff_minutes)
    _cancel(booking, by, text, now, declined=False)


def ensure_reschedulable(
    booking: Booking, now: datetime, by: CancelledBy = CancelledBy.EXPERT, *, cutoff_minutes: int = 0,
    max_reschedules: int | None = None,
) -> None:
    """May ``by`` move this booking now? The status, the start, and for the user the cut-off and the limit."""
    _require(booking, {BookingStatus.PENDING, BookingStatus.CONFIRMED}, "reschedule")
    if booking.start <= now:
        raise InvalidState("the booking has already started")
    check_change_window(by, booking.start, now, cutoff_minutes)
    check_reschedule_limit(by, booking.reschedule_count, max_reschedules)


def reschedule(
    booking: Booking, new_start: datetime, by: CancelledBy, auto_confirm: bool, now: datetime, *,
    cutoff_minutes: int = 0, max_reschedules: int | None = None,
) -> None:
    """Move the booking; the caller has validated ``new_start`` as in create (ignoring this booking).

    Every reschedule counts (``reschedule_count``), the expert's too; only the user is held to the limit.
    An unpaid booking keeps its hold, ending no later than the new start."""
    ensure_reschedulable(booking, now, by, cutoff_minutes=cutoff_minutes, max_reschedules=max_reschedules)
    previous = booking.start
    previous_status = booking.status
    booking.start = new_start
    booking.sequence += 1
    booking.reschedule_count += 1
    booking.has_conflict = False
    if booking.awaiting_payment and booking.payment_due_at is not None:
        booking.payment_due_at = min(booking.payment_due_at, new_start)
    if by == CancelledBy.USER and not auto_confirm:
        booking.status = BookingStatus.PENDING
        booking.confirmed_at = None
    elif (by == CancelledBy.USER and auto_confirm and booking.status == BookingStatus.PENDING
          and not booking.awaiting_payment):
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


def record_payment(
    booking: Booking, payment_id: str, amount_cents: int, currency: str, now: datetime, *, confirm_on_payment: bool,
) -> bool:
    """Record the payment of a booking on hold; False if this very payment was recorded already.

    Idempotent for the same ``payment_id`` (a payment back end retries); another one on a paid
    booking is ``invalid_state``, as is a payment for a booking whose hold ended or that was
    never on hold. ``confirm_on_payment`` (the expert's ``autoConfirm``, or a booking of an
    accepted request) confirms it at once (docs/lifecycle.md#payment-hold).
    """
    if booking.payment_status == PaymentStatus.PAID:
        if booking.payment_id == payment_id:
            return False
        raise InvalidState("the booking is already paid with another payment", status=str(booking.status))
    if not booking.awaiting_payment:
        raise InvalidState(f"the booking is not awaiting payment ({booking.payment_status})",
                           status=str(booking.status))
    _require(booking, {BookingStatus.PENDING}, "pay")
    if booking.payment_due_at is not None and booking.payment_due_at <= now:
        raise InvalidState("the payment hold has ended; the booking is being released", status=str(booking.status))
    check_payment(booking.price_cents, booking.currency, amount_cents, currency)
    booking.payment_status = PaymentStatus.PAID
    booking.payment_id = payment_id
    booking.paid_at = now
    _touch(booking)
    booking.record("booking.paid", paymentId=payment_id, amountCents=amount_cents, currency=currency)
    if confirm_on_payment:
        booking.status = BookingStatus.CONFIRMED
        booking.confirmed_at = now
        booking.record("booking.confirmed")
    return True


def expire_payment(booking: Booking, now: datetime) -> None:
    """The system releases a booking whose payment hold ended unpaid (reason ``payment_not_received``)."""
    _require(booking, {BookingStatus.PENDING}, "expire")
    if not booking.awaiting_payment or booking.payment_due_at is None or booking.payment_due_at > now:
        raise InvalidState("the booking's payment hold has not ended")
    _cancel(booking, CancelledBy.SYSTEM, PAYMENT_NOT_RECEIVED, now, declined=False)
    booking.record("booking.payment_expired")

