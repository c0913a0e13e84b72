"""Expert availability on the wire: settings (docs/domain.md#settings), exceptions, slots, month view, busy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt

from api.schemas.common import IsoDate, LocalInstant, RequestModel, ResponseModel, SafeStr, UtcInstant

HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$", examples=["09:00"])]


class WindowIn(RequestModel):
    start: HHMM
    end: HHMM


class DayIn(RequestModel):
    is_available: StrictBool = True
    windows: Annotated[list[WindowIn], Field(max_length=48)] = []


class WeeklyScheduleIn(RequestModel):
    mon: DayIn | None = None
    tue: DayIn | None = None
    wed: DayIn | None = None
    thu: DayIn | None = None
    fri: DayIn | None = None
    sat: DayIn | None = None
    sun: DayIn | None = None


class AvailabilitySettingsIn(RequestModel):
    """The settings body of ``PUT .../availability``: omitted fields take the defaults of docs/domain.md#settings.

    ``version`` is accepted for round-tripping a GET but ignored: ``If-Match`` decides.
    """

    timezone: Annotated[SafeStr, Field(max_length=64)] = "UTC"
    weekly_schedule: WeeklyScheduleIn | None = None
    min_booking_duration_minutes: StrictInt = 60
    max_booking_duration_minutes: StrictInt = 180
    buffer_between_bookings_minutes: StrictInt = 15
    advance_booking_days: StrictInt = 30
    min_notice_minutes: StrictInt = 0
    slot_increment_minutes: StrictInt = 30
    hourly_rate_cents: StrictInt = 0
    currency: Annotated[SafeStr, Field(max_length=3)] = "USD"
    auto_confirm: StrictBool = False
    payment_required: StrictBool = False
    payment_hold_minutes: StrictInt = 15
    change_cutoff_minutes: StrictInt = 0
    max_reschedules_per_booking: StrictInt | None = None
    max_bookings_per_day: StrictInt | None = None
    max_bookings_per_week: StrictInt | None = None
    version: StrictInt | None = None


class Window(ResponseModel):
    start: str
    end: str


class Day(ResponseModel):
    is_available: bool
    windows: list[Window]


class WeeklySchedule(ResponseModel):
    mon: Day
    tue: Day
    wed: Day
    thu: Day
    fri: Day
    sat: Day
    sun: Day


class AvailabilitySettings(ResponseModel):
    timezone: str
    weekly_schedule: WeeklySchedule
    min_booking_duration_minutes: int
    max_booking_duration_minutes: int
    buffer_between_bookings_minutes: int
    advance_booking_days: int
    min_notice_minutes: int
    slot_increment_minutes: int
    hourly_rate_cents: int
    currency: str
    auto_confirm: bool
    payment_required: bool
    payment_hold_minutes: int
    change_cutoff_minutes: int
    max_reschedules_per_booking: int | None
    max_bookings_per_day: int | None
    max_bookings_per_week: int | None
    version: int


class ExceptionIn(RequestModel):
    type: Literal["unavailable", "custom_hours"]
    windows: Annotated[list[WindowIn], Field(max_length=48)] | None = None
    reason: Annotated[SafeStr, Field(max_length=500)] | None = None


class AvailabilityException(ResponseModel):
    date: IsoDate
    type: Literal["unavailable", "custom_hours"]
    windows: list[Window]
    reason: str | None


class ExceptionList(ResponseModel):
    items: list[AvailabilityException]


class Slot(ResponseModel):
    start: UtcInstant
    end: UtcInstant
    local_start: LocalInstant
    price_cents: int
    currency: str
    status: Literal["available", "booked"]


class SlotList(ResponseModel):
    date: IsoDate
    duration_minutes: int
    timezone: str
    slots: list[Slot]


class CalendarDay(ResponseModel):
    date: IsoDate
    status: Literal["available", "partial", "unavailable"]


class MonthCalendar(ResponseModel):
    month: str
    days: list[CalendarDay]


class BusyInterval(ResponseModel):
    start: UtcInstant
    end: UtcInstant


class BusyList(ResponseModel):
    items: list[BusyInterval]
