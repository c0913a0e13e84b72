"""Property-based tests (hypothesis): no slot ever conflicts, no operation sequence double-books."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking_engine import availability as engine
from booking_engine.errors import BookingError
from booking_engine.model import AvailabilitySettings
from booking_engine.services import bookings as bk
from booking_engine.store.db import Store
from tests.support.db import truncate_all
from tests.support.factories import NOW, WEEKDAYS, publish, settings_body

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]


@st.composite
def windows(draw: st.DrawFn) -> list[dict[str, str]]:
    cuts = sorted(draw(st.lists(st.integers(0, 96), min_size=2, max_size=6, unique=True)))
    pairs = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    fmt = lambda q: f"{q * 15 // 60:02d}:{q * 15 % 60:02d}"  # noqa: E731
    return [{"start": fmt(a), "end": fmt(b)} for a, b in pairs]


@st.composite
def expert_settings(draw: st.DrawFn) -> AvailabilitySettings:
    body = settings_body(
        timezone=draw(st.sampled_from(ZONES)),
        weeklySchedule={d: {"isAvailable": draw(st.booleans()), "windows": draw(windows())} for d in WEEKDAYS},
        bufferBetweenBookingsMinutes=draw(st.sampled_from([0, 5, 15, 30, 60])),
        slotIncrementMinutes=draw(st.sampled_from([5, 15, 30, 60])),
        maxBookingDurationMinutes=240,
        advanceBookingDays=400,
    )
    return AvailabilitySettings.from_dict("e", body, version=1)


BASE = datetime(2030, 3, 1, tzinfo=UTC)  # DST changes in March/April in several of the zones


@st.composite
def busy_list(draw: st.DrawFn) -> list[tuple[datetime, datetime]]:
    out = []
    for _ in range(draw(st.integers(0, 25))):
        start = BASE + timedelta(minutes=5 * draw(st.integers(0, 12 * 24 * 40)))
        out.append((start, start + timedelta(minutes=5 * draw(st.integers(1, 60)))))
    return out


def _conflicts(s: datetime, e: datetime, busy: list[tuple[datetime, datetime]], b: timedelta) -> bool:
    return any(s < be + b and bs < e + b for bs, be in busy)


@settings(max_examples=150, deadline=None)
@given(expert_settings(), busy_list(), st.integers(0, 40), st.sampled_from([60, 75, 90, 120, 240]))
def test_available_slots_never_conflict_and_stay_inside_windows(
    config: AvailabilitySettings, busy: list[tuple[datetime, datetime]], offset: int, duration: int
) -> None:
    day = date(2030, 3, 1) + timedelta(days=offset)
    now = BASE - timedelta(days=1)
    buffer = timedelta(minutes=config.buffer)
    for slot in engine.slots_for_date(config, {}, engine.BusyIndex(busy), day, duration, now):
        assert slot.end - slot.start == timedelta(minutes=duration)
        assert slot.available == (not _conflicts(slot.start, slot.end, busy, buffer))
        # Whatever the engine offers as available, check_bookable accepts (and vice versa for booked).
        if slot.available:
            engine.check_bookable(config, {}, engine.BusyIndex(busy), slot.start, duration, now)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "cancel", "reschedule"]),
        st.integers(0, 20),  # slot index: 09:00 + 15 min * i on one day
        st.sampled_from([60, 75, 90]),
        st.integers(0, 10),  # which existing booking
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_sequence_of_operations_leaves_no_conflicting_pair(store: Store, ops) -> None:  # type: ignore[no-untyped-def]
    truncate_all(store)
    publish(store, slotIncrementMinutes=15)
    day = datetime(2030, 3, 5, 9, 0, tzinfo=UTC)
    made: list[str] = []
    for op, slot, duration, which in ops:
        start = day + timedelta(minutes=15 * slot)
        try:
            if op == "create":
                made.append(bk.create_booking(store, "u", "expert-1", start, duration, "video_call", now=NOW).id)
            elif made and op == "cancel":
                bk.cancel_booking(store, "u", made[which % len(made)], "because", now=NOW)
            elif made:
                bk.reschedule_booking(store, "expert-1", made[which % len(made)], start, now=NOW)
        except BookingError:
            pass
        assert bk.audit_conflicts(store) == []
