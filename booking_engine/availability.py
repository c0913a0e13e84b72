"""The availability engine (docs/domain.md#slots): slots, the month view, and bookability checks.

Pure functions over plain values. The listing and the booking check share their rules
(``StartRule``, ``BusyIndex.conflicts``), so a slot listed as available at an instant is
bookable at that instant. Busy time arrives as one sorted, merged index so that a
candidate's conflict test is a binary search: thirty days of slots against ten thousand
busy intervals cost a few hundred bisections, not millions of comparisons.
"""

from __future__ import annotations

import calendar as _calendar
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from zoneinfo import ZoneInfo

from booking_engine.errors import (
    BeyondAdvanceLimit,
    DurationNotMultipleOf15,
    DurationTooLong,
    DurationTooShort,
    InThePast,
    OutsideAvailability,
    SlotUnavailable,
    TooShortNotice,
    ValidationError,
    WithinBuffer,
)
from booking_engine.model import AvailabilityException, AvailabilitySettings, Interval
from booking_engine.policies import BookingCounts
from booking_engine.timeutil import bound_instant, local_day_range, start_instant, wall, zone

ABSOLUTE_MIN_DURATION = 60


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    price_cents: int
    currency: str
    available: bool

    @property
    def status(self) -> str:
        return "available" if self.available else "booked"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    return (value - EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class BusyIndex:
    """Busy intervals merged into disjoint sorted runs, for O(log n) conflict tests.

    Kept as integer epoch microseconds: the store hands them over without building ten
    thousand datetime objects, and integer comparisons are the cheapest there are. An empty
    interval (end at or before start) is dropped here, so it blocks nothing, not even through
    a buffer (docs/domain.md#busy-times).
    """

    __slots__ = ("_starts", "_ends")

    def __init__(self, intervals: Iterable[tuple[datetime, datetime] | Interval]) -> None:
        pairs = [
            (to_micros(iv.start), to_micros(iv.end))
            if isinstance(iv, Interval)
            else (to_micros(iv[0]), to_micros(iv[1]))
            for iv in intervals
        ]
        self._build(pairs)

    @classmethod
    def from_micros(cls, pairs: list[tuple[int, int]]) -> BusyIndex:
        index = cls.__new__(cls)
        index._build(list(pairs))
        return index

    def _build(self, pairs: list[tuple[int, int]]) -> None:
        pairs.sort(key=itemgetter(0))
        starts: list[int] = []
        ends: list[int] = []
        for start, end in pairs:
            if end <= start:
                continue
            if ends and start <= ends[-1]:
                if end > ends[-1]:
                    ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
        self._starts = starts
        self._ends = ends

    def __len__(self) -> int:
        return len(self._starts)

    def intervals(self) -> list[tuple[datetime, datetime]]:
        return [(from_micros(s), from_micros(e)) for s, e in zip(self._starts, self._ends, strict=True)]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any busy time lies inside ``[start, end)``."""
        s = to_micros(start)
        i = bisect_right(self._ends, s)
        return i < len(self._starts) and self._starts[i] < to_micros(end)

    def conflicts(self, start: datetime, end: datetime, buffer: timedelta) -> bool:
        """``[s, e)`` conflicts with busy ``[bs, be)`` iff ``s < be + b`` and ``bs < e + b``.

        See docs/domain.md#conflicts-and-buffers.
        """
        return self.overlaps(start - buffer, end + buffer)


@dataclass(frozen=True, slots=True)
class StartRule:
    """When a booking may start, seen at ``now`` (docs/domain.md#notice-and-advance).

    After ``now`` (a start at this very instant has already begun: it could be neither
    confirmed nor cancelled any more), at least ``minNoticeMinutes`` ahead and at most
    ``advanceBookingDays`` ahead. The slot listing filters with ``allows`` and the booking
    check raises from ``check``, so the two can never disagree about an instant.
    """

    now: datetime
    notice_minutes: int
    advance_days: int
    earliest: datetime
    latest: datetime

    @classmethod
    def at(cls, settings: AvailabilitySettings, now: datetime) -> StartRule:
        notice, advance = settings.min_notice, settings.advance_days
        return cls(now, notice, advance, now + timedelta(minutes=notice), now + timedelta(days=advance))

    def allows(self, start: datetime) -> bool:
        return self.now < start and self.earliest <= start <= self.latest

    def check(self, start: datetime) -> None:
        """Raise the error ``allows`` would answer ``False`` for."""
        if start <= self.now:
            raise InThePast("the start time has passed", field="startTime")
        if start < self.earliest:
            raise TooShortNotice(f"book at least {self.notice_minutes} minutes ahead", minNotice=self.notice_minutes)
        if start > self.latest:
            raise BeyondAdvanceLimit(f"book at most {self.advance_days} days ahead")


def validate_duration(settings: AvailabilitySettings, duration: int) -> None:
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise ValidationError("durationMinutes must be an integer", field="durationMinutes")
    minimum = max(ABSOLUTE_MIN_DURATION, settings.min_duration)
    if duration < minimum:
        raise DurationTooShort(f"the minimum duration is {minimum} minutes", minimum=minimum)
    if duration % 15:
        raise DurationNotMultipleOf15("durationMinutes must be a multiple of 15")
    if duration > settings.max_duration:
        raise DurationTooLong(
            f"the maximum duration is {settings.max_duration} minutes", maximum=settings.max_duration
        )


def minimum_duration(settings: AvailabilitySettings) -> int:
    minimum = max(ABSOLUTE_MIN_DURATION, settings.min_duration)
    return minimum + (-minimum % 15)


def price_cents(hourly_rate_cents: int, duration: int) -> int:
    return int((Decimal(hourly_rate_cents) * duration / 60).to_integral_value(rounding=ROUND_HALF_UP))


def _window_bounds(
    settings: AvailabilitySettings, exceptions: Mapping[date, AvailabilityException], day: date, tz: ZoneInfo
) -> list[tuple[int, int, datetime, datetime]]:
    """Each window of ``day`` as ``(start_minute, end_minute, start_utc, end_utc)``."""
    return [
        (w.start, w.end, bound_instant(wall(day, w.start), tz), bound_instant(wall(day, w.end), tz))
        for w in settings.windows_for(day, exceptions.get(day))
    ]


def _candidates(
    settings: AvailabilitySettings,
    exceptions: Mapping[date, AvailabilityException],
    day: date,
    duration: timedelta,
    tz: ZoneInfo,
) -> Iterable[datetime]:
    step = timedelta(minutes=settings.increment)
    for start_min, end_min, start_utc, end_utc in _window_bounds(settings, exceptions, day, tz):
        if start_utc + timedelta(minutes=end_min - start_min) == end_utc and start_instant(
            wall(day, start_min), tz
        ) == start_utc:
            # No DST transition inside the window: wall minutes and real minutes coincide.
            start = start_utc
            while start + duration <= end_utc:
                yield start
                start += step
            continue
        minute = start_min
        while minute < end_min:
            instant = start_instant(wall(day, minute), tz)
            if instant is not None:
                if instant + duration > end_utc:
                    # Later wall times only end later in real time, except across a fall-back,
                    # where they may end earlier; keep scanning rather than break.
                    minute += settings.increment
                    continue
                yield instant
            minute += settings.increment


def slots_between(
    settings: AvailabilitySettings,
    exceptions: Mapping[date, AvailabilityException],
    busy: BusyIndex,
    duration: int,
    range_start: datetime,
    range_end: datetime,
    now: datetime,
    counts: BookingCounts | None = None,
) -> list[Slot]:
    """Every slot of ``duration`` whose start lies in ``[range_start, range_end)``, in order.

    With ``counts``, a local date that holds as many bookings as the expert's daily or weekly
    limit allows offers no slot at all (docs/domain.md#booking-limits)."""
    validate_duration(settings, duration)
    tz = zone(settings.timezone)
    length = timedelta(minutes=duration)
    buffer = timedelta(minutes=settings.buffer)
    rule = StartRule.at(settings, now)
    price = price_cents(settings.hourly_rate_cents, duration)
    # A slot starts on the local date of its window (windows end by 24:00), so only the dates
    # the range touches in the expert's timezone can contribute.
    first_day = range_start.astimezone(tz).date()
    last_day = (range_end - timedelta(microseconds=1)).astimezone(tz).date()
    slots: list[Slot] = []
    seen: set[datetime] = set()
    day = first_day
    while day <= last_day:
        if counts is not None and counts.full(day):
            day += timedelta(days=1)
            continue
        for start in _candidates(settings, exceptions, day, length, tz):
            if start < range_start or start >= range_end or not rule.allows(start):
                continue
            if start in seen:
                continue
            seen.add(start)
            end = start + length
            slots.append(Slot(start, end, price, settings.currency, not busy.conflicts(start, end, buffer)))
        day += timedelta(days=1)
    slots.sort(key=lambda s: s.start)
    return slots


def slots_for_date(
    settings: AvailabilitySettings,
    exceptions: Mapping[date, AvailabilityException],
    busy: BusyIndex,
    day: date,
    duration: int,
    now: datetime,
    viewer_tz: str | None = None,
    counts: BookingCounts | None = None,
) -> list[Slot]:
    """Slots starting on the local date ``day`` as read in ``viewer_tz`` (default: the expert's)."""
    tz = zone(viewer_tz or settings.timezone)
    start, end = local_day_range(day, tz)
    return slots_between(settings, exceptions, busy, duration, start, end, now, counts)


def query_range_for_date(settings: AvailabilitySettings, day: date, viewer_tz: str | None) -> Interval:
    """UTC range of busy time that can affect the slots of ``day`` (for loading from the store)."""
    start, end = local_day_range(day, zone(viewer_tz or settings.timezone))
    pad = timedelta(days=1, minutes=settings.buffer + settings.max_duration)
    return Interval(start - pad, end + pad)


def month_range(year: int, month: int, tz_name: str) -> Interval:
    tz = zone(tz_name)
    first = date(year, month, 1)
    last = date(year, month, _calendar.monthrange(year, month)[1])
    return Interval(local_day_range(first, tz)[0], local_day_range(last, tz)[1])


def month_view(
    settings: AvailabilitySettings,
    exceptions: Mapping[date, AvailabilityException],
    busy: BusyIndex,
    year: int,
    month: int,
    now: datetime,
    viewer_tz: str | None = None,
    counts: BookingCounts | None = None,
) -> list[tuple[date, str]]:
    """Each local date of the month: ``available``, ``partial`` or ``unavailable`` (docs/domain.md#month-view)."""
    if not 1 <= month <= 12 or not 1 <= year <= 9998:
        raise ValidationError("month must be YYYY-MM", field="month")
    tz = zone(viewer_tz or settings.timezone)
    expert_tz = zone(settings.timezone)
    whole = month_range(year, month, viewer_tz or settings.timezone)
    slots = slots_between(settings, exceptions, busy, minimum_duration(settings), whole.start, whole.end, now, counts)
    by_day: dict[date, bool] = {}
    for slot in slots:
        if slot.available:
            by_day[slot.start.astimezone(tz).date()] = True
    # Windows as UTC intervals, to tell "available" from "partial".
    windows: list[tuple[datetime, datetime]] = []
    day = whole.start.astimezone(expert_tz).date() - timedelta(days=1)
    while day <= whole.end.astimezone(expert_tz).date():
        windows.extend((s, e) for _, _, s, e in _window_bounds(settings, exceptions, day, expert_tz))
        day += timedelta(days=1)
    result: list[tuple[date, str]] = []
    for dom in range(1, _calendar.monthrange(year, month)[1] + 1):
        local = date(year, month, dom)
        if not by_day.get(local):
            result.append((local, "unavailable"))
            continue
        day_start, day_end = local_day_range(local, tz)
        touched = any(
            busy.overlaps(max(ws, day_start), min(we, day_end))
            for ws, we in windows
            if ws < day_end and we > day_start
        )
        result.append((local, "partial" if touched else "available"))
    return result


def check_bookable(
    settings: AvailabilitySettings,
    exceptions: Mapping[date, AvailabilityException],
    busy: BusyIndex,
    start: datetime,
    duration: int,
    now: datetime,
    counts: BookingCounts | None = None,
) -> None:
    """Raise the specific error that keeps ``[start, start+duration)`` from being booked (docs/domain.md#slots).

    ``counts`` (the expert's active bookings per day and week, this one left out) holds the
    start's local date to the daily and weekly limits."""
    validate_duration(settings, duration)
    start = start.astimezone(UTC)
    if start.second or start.microsecond:
        raise ValidationError("startTime must be on a whole minute", field="startTime")
    StartRule.at(settings, now).check(start)
    tz = zone(settings.timezone)
    end = start + timedelta(minutes=duration)
    day = start.astimezone(tz).date()
    inside = any(
        ws <= start and end <= we
        for d in (day - timedelta(days=1), day)
        for _, _, ws, we in _window_bounds(settings, exceptions, d, tz)
    )
    if not inside:
        raise OutsideAvailability("the time is outside the expert's published windows")
    if busy.overlaps(start, end):
        raise SlotUnavailable("the time conflicts with another booking or busy time")
    if busy.conflicts(start, end, timedelta(minutes=settings.buffer)):
        raise WithinBuffer(
            f"the time is within the expert's {settings.buffer}-minute buffer of another booking or busy time",
            bufferMinutes=settings.buffer,
        )
    if counts is not None:
        counts.check(day)
