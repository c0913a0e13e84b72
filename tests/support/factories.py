"""Small builders for tests: a published expert, a booking, a clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from booking_engine.model import AvailabilitySettings
from booking_engine.services import availability as availability_service
from booking_engine.store.db import Store

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A Monday well in the future of any test clock we use.
NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)


def schedule(windows: list[tuple[str, str]] | None = None, days: tuple[str, ...] = WEEKDAYS) -> dict[str, Any]:
    wins = [{"start": s, "end": e} for s, e in (windows or [("09:00", "17:00")])]
    return {d: {"isAvailable": d in days, "windows": wins if d in days else []} for d in WEEKDAYS}


def settings_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timezone": "UTC",
        "weeklySchedule": schedule(),
        "minBookingDurationMinutes": 60,
        "maxBookingDurationMinutes": 180,
        "bufferBetweenBookingsMinutes": 15,
        "advanceBookingDays": 30,
        "minNoticeMinutes": 0,
        "slotIncrementMinutes": 30,
        "hourlyRateCents": 6000,
        "currency": "USD",
        "autoConfirm": False,
    }
    body.update(overrides)
    return body


def publish(store: Store, expert_id: str = "expert-1", now: datetime = NOW, **overrides: Any) -> AvailabilitySettings:
    current = availability_service.get_availability(store, expert_id)
    return availability_service.set_availability(
        store, expert_id, expert_id, settings_body(**overrides), current.version, now=now
    )
