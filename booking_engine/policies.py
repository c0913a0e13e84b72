"""The refund policy (docs/lifecycle.md#cancel-and-refunds), kept apart so that a product change touches one place."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

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
