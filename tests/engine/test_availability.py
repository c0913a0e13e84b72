"""The availability rules of docs/domain.md (time, settings, slots), each with an example, on the pure engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking_engine import availability as engine
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
)
from booking_engine.model import AvailabilityException, AvailabilitySettings, ExceptionKind, Window
from tests.support.factories import settings_body

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def make(tz: str = "UTC", **overrides: object) -> AvailabilitySettings:
    return AvailabilitySettings.from_dict("e", settings_body(timezone=tz, **overrides), version=1)


def slots(settings: AvailabilitySettings, day: date, duration: int = 60, busy=(), exceptions=None, now=None,
          viewer_tz: str | None = None) -> list[engine.Slot]:
    """Slots of ``day``; the clock defaults to two days before it, inside the advance window."""
    if now is None:
        now = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=2)
    return engine.slots_for_date(settings, exceptions or {}, engine.BusyIndex(busy), day, duration, now, viewer_tz)


def local_starts(result: list[engine.Slot], tz: str) -> list[str]:
    return [s.start.astimezone(ZoneInfo(tz)).strftime("%H:%M") for s in result]


# --- windows and DST ---------------------------------------------------------------------------


def test_plain_day_slots_fit_inside_the_window() -> None:
    result = slots(make(), date(2030, 1, 7))
    assert local_starts(result, "UTC")[0] == "09:00"
    assert local_starts(result, "UTC")[-1] == "16:00"
    assert len(result) == 15
    assert all(s.end - s.start == timedelta(hours=1) for s in result)


@pytest.mark.parametrize(
    ("tz", "day"),
    [("America/New_York", date(2030, 3, 10)), ("Europe/Berlin", date(2030, 3, 31))],
)
def test_spring_forward_keeps_wall_clock_bounds(tz: str, day: date) -> None:
    result = slots(make(tz), day)
    starts = local_starts(result, tz)
    assert starts[0] == "09:00" and starts[-1] == "16:00"
    # Last slot ends at 17:00 local, on the new offset.
    assert result[-1].end.astimezone(ZoneInfo(tz)).strftime("%H:%M") == "17:00"


@pytest.mark.parametrize(
    ("tz", "day", "gap"),
    [("America/New_York", date(2030, 3, 10), "02:"), ("Europe/Berlin", date(2030, 3, 31), "02:")],
)
def test_no_slot_starts_in_the_spring_forward_gap(tz: str, day: date, gap: str) -> None:
    settings = make(tz, weeklySchedule={d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "06:00"}]}
                                        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    result = slots(settings, day)
    starts = local_starts(result, tz)
    assert not any(s.startswith(gap) for s in starts)
    assert "01:00" in starts and "03:00" in starts
    # Durations are real minutes: the 01:30 start would end at 03:30 wall time.
    by_start = {s.start.astimezone(ZoneInfo(tz)).strftime("%H:%M"): s for s in result}
    assert by_start["01:30"].end.astimezone(ZoneInfo(tz)).strftime("%H:%M") == "03:30"
    # 06:00 window end: last start is 05:00; the window holds 5 real hours of slots.
    assert starts[-1] == "05:00"


@pytest.mark.parametrize(
    ("tz", "day"), [("America/New_York", date(2030, 11, 3)), ("Europe/Berlin", date(2030, 10, 27))]
)
def test_fall_back_uses_first_occurrence(tz: str, day: date) -> None:
    settings = make(tz, weeklySchedule={d: {"isAvailable": True, "windows": [{"start": "00:00", "end": "04:00"}]}
                                        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    result = slots(settings, day)
    starts = [s.start.astimezone(ZoneInfo(tz)) for s in result]
    ambiguous = [s for s in starts if s.strftime("%H:%M") == "01:30" or s.strftime("%H:%M") == "02:30"]
    assert ambiguous, "the repeated hour has slots"
    # Every ambiguous wall time appears once, as its first occurrence (fold=0).
    labels = [s.strftime("%H:%M") for s in starts]
    assert len(labels) == len(set(labels))
    truly_ambiguous = 0
    for s in ambiguous:
        naive = s.replace(tzinfo=None)
        # (inter-zone == is always False for ambiguous times, PEP 495: compare in UTC)
        assert s.astimezone(UTC) == naive.replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=ZoneInfo(tz), fold=1).astimezone(UTC)
        if second != s.astimezone(UTC):  # truly ambiguous: the second occurrence is never offered
            assert second not in [x.start for x in result]
            truly_ambiguous += 1
    assert truly_ambiguous == 1
    # The window ends at 04:00 wall time, five real hours after midnight: last start 03:00.
    assert labels[-1] == "03:00"
    assert result[-1].end.astimezone(ZoneInfo(tz)).strftime("%H:%M") == "04:00"


def test_window_to_midnight_with_24_00() -> None:
    settings = make(weeklySchedule={d: {"isAvailable": True, "windows": [{"start": "22:00", "end": "24:00"}]}
                                    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    result = slots(settings, date(2030, 1, 7))
    assert local_starts(result, "UTC") == ["22:00", "22:30", "23:00"]


def test_touching_windows_are_merged_and_overlapping_refused() -> None:
    merged = make(weeklySchedule={"mon": {"isAvailable": True, "windows": [
        {"start": "09:00", "end": "10:30"}, {"start": "10:30", "end": "12:00"}]}})
    assert merged.weekly["mon"].windows == (Window(540, 720),)
    # A 60-minute slot across the former boundary exists.
    assert "10:00" in local_starts(slots(merged, date(2030, 1, 7)), "UTC")
    with pytest.raises(ValidationError):
        make(weeklySchedule={"mon": {"isAvailable": True, "windows": [
            {"start": "09:00", "end": "11:00"}, {"start": "10:30", "end": "12:00"}]}})


@pytest.mark.parametrize("bad", [{"start": "09:00", "end": "24:30"}, {"start": "25:00", "end": "26:00"},
                                 {"start": "10:00", "end": "09:00"}, {"start": "9:00", "end": "10:00"},
                                 {"start": "24:00", "end": "24:00"}])
def test_windows_outside_the_day_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        make(weeklySchedule={"mon": {"isAvailable": True, "windows": [bad]}})


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        make("Mars/Olympus_Mons")
    assert err.value.code == "validation_error"


# --- exceptions --------------------------------------------------------------------------------


def test_day_off_exception_has_no_slots() -> None:
    day = date(2030, 1, 7)
    off = {day: AvailabilityException(day, ExceptionKind.UNAVAILABLE)}
    assert slots(make(), day, exceptions=off) == []


def test_custom_hours_replace_weekly_windows() -> None:
    day = date(2030, 1, 12)  # a Saturday; the weekly schedule is open every day in the factory
    custom = {day: AvailabilityException(day, ExceptionKind.CUSTOM_HOURS, (Window(18 * 60, 20 * 60),))}
    assert local_starts(slots(make(), day, exceptions=custom), "UTC") == ["18:00", "18:30", "19:00"]


# --- buffer, notice, advance -------------------------------------------------------------------


def test_buffer_edges_exactly_15_minutes_allowed_14_not() -> None:
    day = date(2030, 1, 7)
    busy_end = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
    busy = [(datetime(2030, 1, 7, 9, 0, tzinfo=UTC), busy_end)]
    index = engine.BusyIndex(busy)
    buffer = timedelta(minutes=15)
    assert not index.conflicts(busy_end + timedelta(minutes=15), busy_end + timedelta(minutes=75), buffer)
    assert index.conflicts(busy_end + timedelta(minutes=14), busy_end + timedelta(minutes=74), buffer)
    # Before the busy block: ending 15 minutes before it is fine, 14 is not.
    start = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    assert not index.conflicts(start - timedelta(minutes=75), start - timedelta(minutes=15), buffer)
    assert index.conflicts(start - timedelta(minutes=74), start - timedelta(minutes=14), buffer)
    # Through the engine, with a 15-minute increment: 10:00 is inside the buffer, 10:15 is not.
    fine = make(slotIncrementMinutes=15)
    by_start = {s.start.strftime("%H:%M"): s.status for s in slots(fine, day, busy=busy)}
    assert by_start["10:00"] == "booked"
    assert by_start["10:15"] == "available"
    assert by_start["11:00"] == "available"


def test_notice_and_advance_limits() -> None:
    now = datetime(2030, 1, 7, 10, 10, tzinfo=UTC)
    settings = make(minNoticeMinutes=120, advanceBookingDays=2)
    today = local_starts(slots(settings, date(2030, 1, 7), now=now), "UTC")
    assert today[0] == "12:30"  # 12:10 is the earliest allowed start
    assert slots(settings, date(2030, 1, 9), now=now)[-1].start <= now + timedelta(days=2)
    assert local_starts(slots(settings, date(2030, 1, 9), now=now), "UTC")[-1] == "10:00"
    assert slots(settings, date(2030, 1, 10), now=now) == []
    exc = {}
    with pytest.raises(TooShortNotice):
        engine.check_bookable(settings, exc, engine.BusyIndex([]), datetime(2030, 1, 7, 12, 0, tzinfo=UTC), 60, now)
    engine.check_bookable(settings, exc, engine.BusyIndex([]), datetime(2030, 1, 7, 12, 10, tzinfo=UTC), 60, now)
    with pytest.raises(BeyondAdvanceLimit):
        engine.check_bookable(settings, exc, engine.BusyIndex([]), datetime(2030, 1, 9, 10, 11, tzinfo=UTC), 60, now)
    engine.check_bookable(settings, exc, engine.BusyIndex([]), datetime(2030, 1, 9, 10, 10, tzinfo=UTC), 60, now)
    with pytest.raises(InThePast):
        engine.check_bookable(settings, exc, engine.BusyIndex([]), datetime(2030, 1, 7, 10, 0, tzinfo=UTC), 60, now)


def test_check_bookable_window_containment_and_conflict() -> None:
    settings = make()
    idx = engine.BusyIndex([(datetime(2030, 1, 7, 12, 0, tzinfo=UTC), datetime(2030, 1, 7, 13, 0, tzinfo=UTC))])
    with pytest.raises(OutsideAvailability):
        engine.check_bookable(settings, {}, idx, datetime(2030, 1, 7, 16, 30, tzinfo=UTC), 60, NOW)
    with pytest.raises(OutsideAvailability):
        engine.check_bookable(settings, {}, idx, datetime(2030, 1, 7, 8, 30, tzinfo=UTC), 60, NOW)
    with pytest.raises(SlotUnavailable):
        engine.check_bookable(settings, {}, idx, datetime(2030, 1, 7, 13, 14, tzinfo=UTC), 60, NOW)
    engine.check_bookable(settings, {}, idx, datetime(2030, 1, 7, 13, 15, tzinfo=UTC), 60, NOW)


# --- durations and price -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "error"),
    [(59, DurationTooShort), (60, None), (61, DurationNotMultipleOf15), (75, None), (180, None),
     (195, DurationTooLong)],
)
def test_duration_rules(duration: int, error: type[Exception] | None) -> None:
    settings = make()
    if error is None:
        engine.validate_duration(settings, duration)
        assert all(s.end - s.start == timedelta(minutes=duration) for s in slots(settings, date(2030, 1, 7), duration))
    else:
        with pytest.raises(error):
            engine.validate_duration(settings, duration)


def test_minimum_never_below_60() -> None:
    with pytest.raises(ValidationError):
        make(minBookingDurationMinutes=45)


@pytest.mark.parametrize(
    ("rate", "duration", "price"),
    [(6000, 60, 6000), (6000, 75, 7500), (1, 90, 2), (3, 75, 4), (10001, 75, 12501), (0, 120, 0), (333, 60, 333)],
)
def test_price_rounds_half_up(rate: int, duration: int, price: int) -> None:
    assert engine.price_cents(rate, duration) == price


# --- viewer timezone and month view ------------------------------------------------------------


def test_slots_of_a_date_in_the_viewer_timezone() -> None:
    settings = make("Europe/Berlin")  # 09-17 Berlin = 08-16 UTC in January
    result = slots(settings, date(2030, 1, 7), viewer_tz="Asia/Tokyo")  # Tokyo date 7 Jan = 6th 15:00Z..7th 15:00Z
    # 6 Jan 16:00 Berlin (15:00Z) is the first start on the Tokyo date; it ends at 17:00 Berlin.
    assert result[0].start == datetime(2030, 1, 6, 15, 0, tzinfo=UTC)
    assert datetime(2030, 1, 7, 8, 0, tzinfo=UTC) in [s.start for s in result]
    assert result[-1].start < datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
    assert result[-1].start == datetime(2030, 1, 7, 14, 30, tzinfo=UTC)


def test_month_view_statuses() -> None:
    settings = make(advanceBookingDays=60, weeklySchedule={
        d: {"isAvailable": d != "sun", "windows": [{"start": "09:00", "end": "11:00"}] if d != "sun" else []}
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    now = datetime(2030, 1, 8, 12, 0, tzinfo=UTC)
    busy = [
        (datetime(2030, 1, 9, 9, 0, tzinfo=UTC), datetime(2030, 1, 9, 9, 30, tzinfo=UTC)),  # partial
        (datetime(2030, 1, 10, 9, 0, tzinfo=UTC), datetime(2030, 1, 10, 11, 0, tzinfo=UTC)),  # fully booked
    ]
    view = dict(engine.month_view(settings, {}, engine.BusyIndex(busy), 2030, 1, now))
    assert len(view) == 31
    assert view[date(2030, 1, 7)] == "unavailable"  # past
    assert view[date(2030, 1, 8)] == "unavailable"  # today, after the window
    assert view[date(2030, 1, 9)] == "partial"
    assert view[date(2030, 1, 10)] == "unavailable"
    assert view[date(2030, 1, 11)] == "available"
    assert view[date(2030, 1, 13)] == "unavailable"  # Sunday off
    assert engine.month_view(settings, {}, engine.BusyIndex([]), 2030, 3, now)[-1] == (date(2030, 3, 31), "unavailable")
    with pytest.raises(ValidationError):
        engine.month_view(settings, {}, engine.BusyIndex([]), 2030, 13, now)


# --- one rule for listing and booking (docs/domain.md#notice-and-advance) -------------------------


def _bookable(settings: AvailabilitySettings, busy: engine.BusyIndex, start: datetime, now: datetime) -> bool:
    try:
        engine.check_bookable(settings, {}, busy, start, 60, now)
    except (InThePast, TooShortNotice, BeyondAdvanceLimit, SlotUnavailable):
        return False
    return True


def test_a_slot_starting_exactly_now_is_neither_listed_nor_bookable() -> None:
    settings = make()  # minNoticeMinutes 0, 30-minute increment, 09-17 UTC
    now = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
    listed = [s.start for s in slots(settings, date(2030, 1, 7), now=now)]
    assert now not in listed and listed[0] == now + timedelta(minutes=30)
    with pytest.raises(InThePast):
        engine.check_bookable(settings, {}, engine.BusyIndex([]), now, 60, now)
    engine.check_bookable(settings, {}, engine.BusyIndex([]), listed[0], 60, now)


@pytest.mark.parametrize("notice", [0, 30, 45, 120])
def test_every_listed_slot_is_bookable_at_the_same_instant_and_no_other(notice: int) -> None:
    """Swept across the notice and advance boundaries, to the microsecond: the listing and the
    booking check answer alike for every candidate start of the day."""
    settings = make(minNoticeMinutes=notice, advanceBookingDays=1, slotIncrementMinutes=15)
    blocked = [(datetime(2030, 1, 7, 13, 0, tzinfo=UTC), datetime(2030, 1, 7, 14, 0, tzinfo=UTC))]
    busy = engine.BusyIndex(blocked)
    candidates = [datetime(2030, 1, 7, 9, 0, tzinfo=UTC) + timedelta(minutes=15 * k) for k in range(29)]
    nows: list[datetime] = []
    for base in (datetime(2030, 1, 7, 10, 0, tzinfo=UTC), datetime(2030, 1, 6, 12, 0, tzinfo=UTC)):
        edge = base - timedelta(minutes=notice)
        nows += [edge + timedelta(microseconds=d) for d in (-1, 0, 1)] + [edge + timedelta(minutes=m) for m in (-1, 1)]
    for now in nows:
        listed = {s.start: s.available for s in slots(settings, date(2030, 1, 7), busy=blocked, now=now)}
        for start in candidates:
            assert listed.get(start, False) == _bookable(settings, busy, start, now), (now, start)


def test_the_advance_limit_is_the_same_for_listing_and_booking() -> None:
    settings = make(advanceBookingDays=1)
    now = datetime(2030, 1, 6, 12, 0, tzinfo=UTC)
    last = max(s.start for s in slots(settings, date(2030, 1, 7), now=now))
    assert last == datetime(2030, 1, 7, 12, 0, tzinfo=UTC)  # exactly now + 1 day is still in
    engine.check_bookable(settings, {}, engine.BusyIndex([]), last, 60, now)
    with pytest.raises(BeyondAdvanceLimit):
        engine.check_bookable(settings, {}, engine.BusyIndex([]), last + timedelta(minutes=30), 60, now)


# --- zero-length busy time (docs/domain.md#busy-times) and the buffer (#conflicts-and-buffers) -----


def test_zero_length_busy_time_blocks_nothing_not_even_through_the_buffer() -> None:
    settings = make(bufferBetweenBookingsMinutes=30)
    instant = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
    index = engine.BusyIndex([(instant, instant)])
    assert len(index) == 0 and index.intervals() == []
    assert not index.conflicts(instant, instant + timedelta(hours=1), timedelta(minutes=30))
    assert all(s.available for s in slots(settings, date(2030, 1, 7), busy=[(instant, instant)]))
    engine.check_bookable(settings, {}, index, instant, 60, NOW)
    engine.check_bookable(settings, {}, index, instant - timedelta(hours=1), 60, NOW)
    view = dict(engine.month_view(settings, {}, index, 2030, 1, datetime(2029, 12, 31, tzinfo=UTC)))
    assert view[date(2030, 1, 7)] == "available"  # not "partial"
    # A micro-second of busy time does block, with its buffer.
    real = engine.BusyIndex([(instant, instant + timedelta(microseconds=1))])
    assert real.conflicts(instant + timedelta(minutes=29), instant + timedelta(minutes=89), timedelta(minutes=30))


def test_a_refusal_only_because_of_the_buffer_names_the_buffer() -> None:
    settings = make(bufferBetweenBookingsMinutes=20)
    busy = engine.BusyIndex([(datetime(2030, 1, 7, 12, 0, tzinfo=UTC), datetime(2030, 1, 7, 13, 0, tzinfo=UTC))])
    for start in (datetime(2030, 1, 7, 13, 10, tzinfo=UTC), datetime(2030, 1, 7, 10, 45, tzinfo=UTC)):
        with pytest.raises(SlotUnavailable) as err:
            engine.check_bookable(settings, {}, busy, start, 60, NOW)
        assert err.value.code == "slot_unavailable" and err.value.status == 409
        assert "within the expert's 20-minute buffer" in err.value.detail
    with pytest.raises(SlotUnavailable) as err:
        engine.check_bookable(settings, {}, busy, datetime(2030, 1, 7, 12, 30, tzinfo=UTC), 60, NOW)
    assert "buffer" not in err.value.detail and "conflicts" in err.value.detail
    engine.check_bookable(settings, {}, busy, datetime(2030, 1, 7, 13, 20, tzinfo=UTC), 60, NOW)
