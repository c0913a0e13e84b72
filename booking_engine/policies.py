"""The expert's booking policies, kept apart so that a product change touches one place: refunds
(docs/lifecycle.md#cancel-and-refunds), the payment hold, the change cut-off, the reschedule limit and
the daily and weekly limits. Pure functions of plain values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from booking_engine.errors import (
    BookingLimitReached,
    ChangeWindowClosed,
    PaymentAmountMismatch,
    RescheduleLimitReached,
)
from booking_engine.model import CancelledBy

FULL_REFUND_BEFORE = timedelta(hours=24)
HALF_REFUND_BEFORE = timedelta(hours=2)


def refund_percent(cancelled_by: CancelledBy, start: datetime, now: datetime) -> int:
    """100% at least 24 h ahead, 50% at least 2 h ahead, else 0%; expert and system: 100%."""
    if cancelled_by != CancelledBy.USER:
        return 100
    ahead = start - now
    if ahead >= FULL_REFUND_BEFORE:
        return 100
    if ahead >= HALF_REFUND_BEFORE:
        return 50
    return 0


def refund_cents(price_cents: int, percent: int) -> int:
    return int((Decimal(price_cents) * percent / 100).to_integral_value(rounding=ROUND_HALF_UP))


# --- payment hold (docs/lifecycle.md#payment-hold) ---------------------------------------


def payment_due_at(now: datetime, start: datetime, hold_minutes: int) -> datetime:
    """The end of the hold: ``hold_minutes`` after booking, but never after the start itself."""
    return min(now + timedelta(minutes=hold_minutes), start)


def check_payment(price_cents: int, currency: str, amount_cents: int, paid_currency: str) -> None:
    """The payment covers the price: the booking's currency, at least its price (more is the payer's affair)."""
    if paid_currency != currency:
        raise PaymentAmountMismatch(f"the booking is priced in {currency}, the payment is in {paid_currency}")
    if amount_cents < price_cents:
        raise PaymentAmountMismatch(f"the payment of {amount_cents} is below the price of {price_cents} {currency}")


# --- change cut-off and reschedule limit (docs/lifecycle.md#change-cut-off) ---------------


def check_change_window(by: CancelledBy, start: datetime, now: datetime, cutoff_minutes: int) -> None:
    """The user may change a booking until ``cutoff_minutes`` before its start (at exactly that, still);
    the expert and the system always."""
    if by != CancelledBy.USER or cutoff_minutes <= 0:
        return
    if start - now < timedelta(minutes=cutoff_minutes):
        raise ChangeWindowClosed(
            f"the booking can no longer be changed: the expert allows changes until {cutoff_minutes} minutes "
            "before the start")


def check_reschedule_limit(by: CancelledBy, count: int, limit: int | None) -> None:
    """A user's reschedule when the booking was already moved ``limit`` times is refused; the expert's never."""
    if by == CancelledBy.USER and limit is not None and count >= limit:
        raise RescheduleLimitReached(f"the booking was rescheduled {count} times; the expert allows {limit}")


# --- daily and weekly limits (docs/domain.md#booking-limits) ------------------------------


def week_of(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.year, iso.week


@dataclass(frozen=True, slots=True)
class BookingCounts:
    """Active bookings of an expert per local date and per ISO week, and the limits they are held to."""

    per_day: Counter[date]
    per_week: Counter[tuple[int, int]]
    max_per_day: int | None
    max_per_week: int | None

    @classmethod
    def of(cls, starts: Iterable[datetime], tz: tzinfo, max_per_day: int | None,
           max_per_week: int | None) -> BookingCounts:
        days = [s.astimezone(tz).date() for s in starts]
        return cls(Counter(days), Counter(week_of(d) for d in days), max_per_day, max_per_week)

    def full(self, day: date) -> str | None:
        """``"day"`` or ``"week"`` if one more booking on this local date would break a limit, else None."""
        if self.max_per_day is not None and self.per_day[day] >= self.max_per_day:
            return "day"
        if self.max_per_week is not None and self.per_week[week_of(day)] >= self.max_per_week:
            return "week"
        return None

    def check(self, day: date) -> None:
        which = self.full(day)
        if which == "day":
            raise BookingLimitReached(f"the expert takes at most {self.max_per_day} bookings on {day.isoformat()}")
        if which == "week":
            year, week = week_of(day)
            raise BookingLimitReached(f"the expert takes at most {self.max_per_week} bookings in week "
                                      f"{year}-W{week:02d}")
