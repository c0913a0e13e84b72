"""Entities and value objects of the booking domain, plain Python (no ORM, no HTTP).

The store maps rows to these and back; the service layer loads them, calls their
behaviour and writes them, together with the domain events they collected, in one
transaction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from booking_engine.errors import ValidationError
from booking_engine.timeutil import MINUTES_PER_DAY, iso_z, zone

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class BookingStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


ACTIVE_STATUSES: frozenset[str] = frozenset({BookingStatus.PENDING, BookingStatus.CONFIRMED})


class PaymentStatus(StrEnum):
    """Where a booking's payment stands (docs/lifecycle.md#payment-hold)."""

    NOT_REQUIRED = "not_required"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    #: Cancelled (by anyone, or expired) before it was paid: nothing is owed and nothing is refunded.
    UNPAID = "unpaid"


class BookingType(StrEnum):
    VIDEO_CALL = "video_call"
    AUDIO_CALL = "audio_call"
    IN_PERSON = "in_person"


class CancelledBy(StrEnum):
    USER = "user"
    EXPERT = "expert"
    SYSTEM = "system"


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class ExceptionKind(StrEnum):
    UNAVAILABLE = "unavailable"
    CUSTOM_HOURS = "custom_hours"


def parse_hhmm(text: Any, field_name: str) -> int:
    if not isinstance(text, str) or not _HHMM.match(text):
        raise ValidationError(f"{field_name} must be HH:MM between 00:00 and 24:00, got {text!r}", field=field_name)
    hours, minutes = int(text[:2]), int(text[3:])
    total = hours * 60 + minutes
    if total > MINUTES_PER_DAY:
        raise ValidationError(f"{field_name} must be at most 24:00, got {text!r}", field=field_name)
    return total


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """Local wall-clock minutes after midnight, ``start < end <= 1440``."""

    start: int
    end: int

    @classmethod
    def parse(cls, raw: Any, field_name: str = "windows") -> Window:
        if not isinstance(raw, dict) or set(raw) - {"start", "end"} or not {"start", "end"} <= set(raw):
            raise ValidationError(f"{field_name} entries are {{start, end}}", field=field_name)
        start = parse_hhmm(raw["start"], f"{field_name}.start")
        end = parse_hhmm(raw["end"], f"{field_name}.end")
        if start >= MINUTES_PER_DAY:
            raise ValidationError(f"{field_name}.start must be before 24:00", field=field_name)
        if end <= start:
            raise ValidationError(f"{field_name}: end must be after start", field=field_name)
        return cls(start, end)

    def as_dict(self) -> dict[str, str]:
        return {"start": format_hhmm(self.start), "end": format_hhmm(self.end)}


def normalise_windows(windows: list[Window], field_name: str) -> tuple[Window, ...]:
    """Sort, refuse overlaps, merge touching windows (docs/domain.md#settings)."""
    merged: list[Window] = []
    for window in sorted(windows):
        if merged and window.start < merged[-1].end:
            raise ValidationError(f"{field_name}: windows overlap", field=field_name)
        if merged and window.start == merged[-1].end:
            merged[-1] = Window(merged[-1].start, window.end)
        else:
            merged.append(window)
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class DaySchedule:
    is_available: bool
    windows: tuple[Window, ...] = ()

    def effective(self) -> tuple[Window, ...]:
        return self.windows if self.is_available else ()


def closed_week() -> dict[str, DaySchedule]:
    return {day: DaySchedule(False, ()) for day in WEEKDAYS}


@dataclass(frozen=True, slots=True)
class AvailabilitySettings:
    """An expert's published availability (docs/domain.md#settings). ``version`` 0 means never saved.

    Decision: until an expert saves settings every day is closed, so nobody can book an
    expert who has not published a schedule.
    """

    expert_id: str
    timezone: str = "UTC"
    weekly: dict[str, DaySchedule] = field(default_factory=closed_week)
    min_duration: int = 60
    max_duration: int = 180
    buffer: int = 15
    advance_days: int = 30
    min_notice: int = 0
    increment: int = 30
    hourly_rate_cents: int = 0
    currency: str = "USD"
    auto_confirm: bool = False
    payment_required: bool = False
    payment_hold_minutes: int = 15
    change_cutoff_minutes: int = 0
    max_reschedules: int | None = None
    max_per_day: int | None = None
    max_per_week: int | None = None
    version: int = 0

    @property
    def has_booking_limits(self) -> bool:
        return self.max_per_day is not None or self.max_per_week is not None

    def validate(self) -> AvailabilitySettings:
        zone(self.timezone)
        checks: list[tuple[bool, str, str]] = [
            (self.min_duration >= 60, "minBookingDurationMinutes", "must be at least 60"),
            (self.min_duration % 15 == 0, "minBookingDurationMinutes", "must be a multiple of 15"),
            (self.max_duration % 15 == 0, "maxBookingDurationMinutes", "must be a multiple of 15"),
            (self.max_duration >= self.min_duration, "maxBookingDurationMinutes", "must be >= the minimum"),
            (self.max_duration <= 24 * 60, "maxBookingDurationMinutes", "must be at most 1440"),
            (0 <= self.buffer <= 24 * 60, "bufferBetweenBookingsMinutes", "must be between 0 and 1440"),
            (1 <= self.advance_days <= 730, "advanceBookingDays", "must be between 1 and 730"),
            (0 <= self.min_notice <= 60 * 24 * 365, "minNoticeMinutes", "must be between 0 and 525600"),
            (5 <= self.increment <= 24 * 60 and self.increment % 5 == 0, "slotIncrementMinutes",
             "must be a multiple of 5 between 5 and 1440"),
            (0 <= self.hourly_rate_cents <= 10**9, "hourlyRateCents", "must be between 0 and 1000000000"),
            (bool(_CURRENCY.match(self.currency)), "currency", "must be a 3-letter ISO 4217 code"),
            (set(self.weekly) == set(WEEKDAYS), "weeklySchedule", "must name each of mon..sun"),
            (5 <= self.payment_hold_minutes <= 24 * 60, "paymentHoldMinutes", "must be between 5 and 1440"),
            (0 <= self.change_cutoff_minutes <= 60 * 24 * 30, "changeCutoffMinutes", "must be between 0 and 43200"),
            (self.max_reschedules is None or 0 <= self.max_reschedules <= 100, "maxReschedulesPerBooking",
             "must be null or between 0 and 100"),
            (self.max_per_day is None or 1 <= self.max_per_day <= 1000, "maxBookingsPerDay",
             "must be null or between 1 and 1000"),
            (self.max_per_week is None or 1 <= self.max_per_week <= 7000, "maxBookingsPerWeek",
             "must be null or between 1 and 7000"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ValidationError(f"{name} {message}", field=name)
        return self

    def windows_for(self, day: date, exception: AvailabilityException | None) -> tuple[Window, ...]:
        if exception is not None:
            return exception.windows if exception.kind == ExceptionKind.CUSTOM_HOURS else ()
        return self.weekly[WEEKDAYS[day.weekday()]].effective()

    def as_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weeklySchedule": {
                day: {"isAvailable": s.is_available, "windows": [w.as_dict() for w in s.windows]}
                for day, s in self.weekly.items()
            },
            "minBookingDurationMinutes": self.min_duration,
            "maxBookingDurationMinutes": self.max_duration,
            "bufferBetweenBookingsMinutes": self.buffer,
            "advanceBookingDays": self.advance_days,
            "minNoticeMinutes": self.min_notice,
            "slotIncrementMinutes": self.increment,
            "hourlyRateCents": self.hourly_rate_cents,
            "currency": self.currency,
            "autoConfirm": self.auto_confirm,
            "paymentRequired": self.payment_required,
            "paymentHoldMinutes": self.payment_hold_minutes,
            "changeCutoffMinutes": self.change_cutoff_minutes,
            "maxReschedulesPerBooking": self.max_reschedules,
            "maxBookingsPerDay": self.max_per_day,
            "maxBookingsPerWeek": self.max_per_week,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, expert_id: str, raw: dict[str, Any], version: int = 0) -> AvailabilitySettings:
        """Parse the camelCase settings body; unknown keys and wrong types are validation errors."""
        defaults = cls(expert_id)
        known = set(defaults.as_dict())
        unknown = set(raw) - known
        if unknown:
            raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")

        def integer(name: str, default: int) -> int:
            value = raw.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{name} must be an integer", field=name)
            return value

        def optional_integer(name: str) -> int | None:
            value = raw.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{name} must be an integer or null", field=name)
            return value

        def boolean(name: str, default: bool) -> bool:
            value = raw.get(name, default)
            if not isinstance(value, bool):
                raise ValidationError(f"{name} must be a boolean", field=name)
            return value

        weekly_raw = raw.get("weeklySchedule")
        weekly = closed_week()
        if weekly_raw is not None:
            if not isinstance(weekly_raw, dict) or set(weekly_raw) - set(WEEKDAYS):
                raise ValidationError("weeklySchedule has the keys mon..sun", field="weeklySchedule")
            for day, spec in weekly_raw.items():
                weekly[day] = _parse_day(day, spec)
        tz = raw.get("timezone", defaults.timezone)
        if not isinstance(tz, str):
            raise ValidationError("timezone must be an IANA name", field="timezone")
        currency = raw.get("currency", defaults.currency)
        auto = raw.get("autoConfirm", defaults.auto_confirm)
        if not isinstance(currency, str):
            raise ValidationError("currency must be a string", field="currency")
        if not isinstance(auto, bool):
            raise ValidationError("autoConfirm must be a boolean", field="autoConfirm")
        return cls(
            expert_id=expert_id,
            timezone=tz,
            weekly=weekly,
            min_duration=integer("minBookingDurationMinutes", defaults.min_duration),
            max_duration=integer("maxBookingDurationMinutes", defaults.max_duration),
            buffer=integer("bufferBetweenBookingsMinutes", defaults.buffer),
            advance_days=integer("advanceBookingDays", defaults.advance_days),
            min_notice=integer("minNoticeMinutes", defaults.min_notice),
            increment=integer("slotIncrementMinutes", defaults.increment),
            hourly_rate_cents=integer("hourlyRateCents", defaults.hourly_rate_cents),
            currency=currency,
            auto_confirm=auto,
            payment_required=boolean("paymentRequired", defaults.payment_required),
            payment_hold_minutes=integer("paymentHoldMinutes", defaults.payment_hold_minutes),
            change_cutoff_minutes=integer("changeCutoffMinutes", defaults.change_cutoff_minutes),
            max_reschedules=optional_integer("maxReschedulesPerBooking"),
            max_per_day=optional_integer("maxBookingsPerDay"),
            max_per_week=optional_integer("maxBookingsPerWeek"),
            version=version,
        ).validate()


def _parse_day(day: str, spec: Any) -> DaySchedule:
    name = f"weeklySchedule.{day}"
    if not isinstance(spec, dict) or set(spec) - {"isAvailable", "windows"}:
        raise ValidationError(f"{name} is {{isAvailable, windows}}", field=name)
    available = spec.get("isAvailable", True)
    if not isinstance(available, bool):
        raise ValidationError(f"{name}.isAvailable must be a boolean", field=name)
    raw_windows = spec.get("windows", [])
    if not isinstance(raw_windows, list) or len(raw_windows) > 48:
        raise ValidationError(f"{name}.windows must be a list of at most 48 windows", field=name)
    windows = normalise_windows([Window.parse(w, f"{name}.windows") for w in raw_windows], name)
    return DaySchedule(available, windows)


@dataclass(frozen=True, slots=True)
class AvailabilityException:
    """A local date that departs from the weekly schedule: a day off, or custom hours."""

    day: date
    kind: ExceptionKind
    windows: tuple[Window, ...] = ()
    reason: str | None = None

    @classmethod
    def from_dict(cls, day: date, raw: Any) -> AvailabilityException:
        if not isinstance(raw, dict) or set(raw) - {"type", "windows", "reason"}:
            raise ValidationError("an exception is {type, windows?, reason?}")
        try:
            kind = ExceptionKind(str(raw.get("type")))
        except ValueError as exc:
            raise ValidationError("type must be 'unavailable' or 'custom_hours'", field="type") from exc
        reason = raw.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise ValidationError("reason must be a string of at most 500 characters", field="reason")
        raw_windows = raw.get("windows") or []
        if not isinstance(raw_windows, list) or len(raw_windows) > 48:
            raise ValidationError("windows must be a list of at most 48 windows", field="windows")
        windows = normalise_windows([Window.parse(w) for w in raw_windows], "windows")
        if kind == ExceptionKind.CUSTOM_HOURS and not windows:
            raise ValidationError("custom_hours needs at least one window", field="windows")
        if kind == ExceptionKind.UNAVAILABLE and windows:
            raise ValidationError("an unavailable day has no windows", field="windows")
        return cls(day, kind, windows, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "type": str(self.kind),
            "windows": [w.as_dict() for w in self.windows],
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened, written to the outbox in the same transaction as the change."""

    type: str
    aggregate_id: str
    payload: dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class Booking:
    id: str
    expert_id: str
    user_id: str
    start: datetime
    duration: int
    type: BookingType
    status: BookingStatus
    price_cents: int
    currency: str
    buffer: int
    created_at: datetime
    topic: str | None = None
    notes: str | None = None
    payment_id: str | None = None
    refund_cents: int | None = None
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None
    cancelled_by: CancelledBy | None = None
    has_conflict: bool = False
    version: int = 1
    sequence: int = 0
    request_id: str | None = None
    payment_status: PaymentStatus = PaymentStatus.NOT_REQUIRED
    payment_due_at: datetime | None = None
    paid_at: datetime | None = None
    reschedule_count: int = 0
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @property
    def awaiting_payment(self) -> bool:
        return self.payment_status == PaymentStatus.AWAITING_PAYMENT

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration)

    @property
    def blocked_until(self) -> datetime:
        """End of the range the exclusion constraint guards: the end plus the buffer."""
        return self.end + timedelta(minutes=self.buffer)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def record(self, event_type: str, **extra: Any) -> None:
        self.events.append(DomainEvent(event_type, self.id, {"booking": self.as_dict(), **extra}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "expertId": self.expert_id,
            "userId": self.user_id,
            "startTime": iso_z(self.start),
            "endTime": iso_z(self.end),
            "durationMinutes": self.duration,
            "status": str(self.status),
            "type": str(self.type),
            "topic": self.topic,
            "notes": self.notes,
            "priceCents": self.price_cents,
            "currency": self.currency,
            "paymentId": self.payment_id,
            "paymentStatus": str(self.payment_status),
            "paymentDueAt": iso_z(self.payment_due_at),
            "paidAt": iso_z(self.paid_at),
            "refundCents": self.refund_cents,
            "rescheduleCount": self.reschedule_count,
            "createdAt": iso_z(self.created_at),
            "confirmedAt": iso_z(self.confirmed_at),
            "cancelledAt": iso_z(self.cancelled_at),
            "cancellationReason": self.cancellation_reason,
            "cancelledBy": str(self.cancelled_by) if self.cancelled_by else None,
            "hasConflict": self.has_conflict,
        }


@dataclass(frozen=True, slots=True)
class ProposedSlot:
    start: datetime


@dataclass(slots=True)
class BookingRequest:
    id: str
    expert_id: str
    user_id: str
    duration: int
    type: BookingType
    proposed: tuple[ProposedSlot, ...]
    status: RequestStatus
    created_at: datetime
    expires_at: datetime
    message: str | None = None
    response_message: str | None = None
    responded_at: datetime | None = None
    booking_id: str | None = None
    accepted_index: int | None = None
    version: int = 1
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    def record(self, event_type: str, **extra: Any) -> None:
        self.events.append(DomainEvent(event_type, self.id, {"request": self.as_dict(), **extra}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "expertId": self.expert_id,
            "userId": self.user_id,
            "requestedDurationMinutes": self.duration,
            "type": str(self.type),
            "proposedSlots": [
                {"startTime": iso_z(p.start), "endTime": iso_z(p.start + timedelta(minutes=self.duration))}
                for p in self.proposed
            ],
            "message": self.message,
            "status": str(self.status),
            "createdAt": iso_z(self.created_at),
            "expiresAt": iso_z(self.expires_at),
            "respondedAt": iso_z(self.responded_at),
            "responseMessage": self.response_message,
            "acceptedSlotIndex": self.accepted_index,
            "bookingId": self.booking_id,
        }


