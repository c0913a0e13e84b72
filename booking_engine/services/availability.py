"""Use cases around an expert's availability: settings, exceptions, slots, month view, busy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from booking_engine import availability as engine
from booking_engine import policies
from booking_engine.errors import Forbidden, NotFound, ValidationError
from booking_engine.model import AvailabilityException, AvailabilitySettings
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import availability as availability_rows
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import busy_time as busy_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.timeutil import local_day_range, to_utc, zone

MAX_BUSY_RANGE = timedelta(days=366)
MAX_EXCEPTION_RANGE_DAYS = 732


def load_settings(
    conn: Connection, expert_id: str, for_update: bool = False, *, asked_by: str | None = None
) -> AvailabilitySettings:
    """Saved settings, or the closed defaults (version 0) of an expert who never published.

    ``asked_by`` is the user a read or a booking is for (docs/domain.md#experts): given, an
    expert nobody knows (no profile and no settings) is ``not_found``, unless they ask about
    themselves (an expert's own first look at their schedule, before the first ``PUT``).
    Internal callers (the worker wanting a timezone) leave it out and get the defaults.
    """
    settings = availability_rows.get_settings(conn, expert_id, for_update=for_update)
    if settings is not None:
        return settings
    user = user_rows.get_user(conn, expert_id)
    if user is None and asked_by is not None and asked_by != expert_id:
        raise NotFound("expert not found")
    tz = user["timezone"] if user and user["timezone"] else "UTC"
    return AvailabilitySettings(expert_id=expert_id, timezone=tz)


def require_known_expert(conn: Connection, expert_id: str, asked_by: str | None) -> None:
    """``not_found`` for an expert nobody knows, as ``load_settings`` with ``asked_by`` decides."""
    load_settings(conn, expert_id, asked_by=asked_by)


def load_context(
    conn: Connection, settings: AvailabilitySettings, start: datetime, end: datetime,
    exclude_booking: str | None = None,
) -> tuple[Mapping[date, AvailabilityException], engine.BusyIndex]:
    """Exceptions and busy time that can matter for instants in ``[start, end)``."""
    tz = zone(settings.timezone)
    pad = timedelta(minutes=settings.buffer + 1)
    exceptions = availability_rows.get_exceptions(
        conn,
        settings.expert_id,
        start.astimezone(tz).date() - timedelta(days=1),
        end.astimezone(tz).date() + timedelta(days=1),
    )
    busy = busy_rows.busy_micros(conn, settings.expert_id, start - pad, end + pad, exclude_booking=exclude_booking)
    return exceptions, engine.BusyIndex.from_micros(busy)


def lock_for_limits(conn: Connection, settings: AvailabilitySettings) -> AvailabilitySettings:
    """Lock the expert's settings row for the rest of the write transaction, and read it again.

    Two bookings racing for the last place of a day do not overlap, so the exclusion
    constraint cannot stop the second: on PostgreSQL (READ COMMITTED) the lock makes the
    second wait, and its count, read after the wait, sees the first one's booking. SQLite's
    ``BEGIN IMMEDIATE`` serialises the writes already (docs/domain.md#booking-limits).
    """
    return availability_rows.get_settings(conn, settings.expert_id, for_update=True) or settings


def load_counts(
    conn: Connection, settings: AvailabilitySettings, first: date, last: date, exclude_booking: str | None = None,
) -> policies.BookingCounts:
    """Active bookings per local date and ISO week, over the whole weeks from ``first`` to ``last``."""
    tz = zone(settings.timezone)
    monday = first - timedelta(days=first.weekday())
    next_monday = last + timedelta(days=7 - last.weekday())
    start, end = local_day_range(monday, tz)[0], local_day_range(next_monday, tz)[0]
    starts = booking_rows.active_starts(conn, settings.expert_id, start, end, exclude_booking=exclude_booking)
    return policies.BookingCounts.of(starts, tz, settings.max_per_day, settings.max_per_week)


def load_counts_around(
    conn: Connection, settings: AvailabilitySettings, start: datetime, exclude_booking: str | None = None,
) -> policies.BookingCounts:
    day = start.astimezone(zone(settings.timezone)).date()
    return load_counts(conn, settings, day, day, exclude_booking)


def _counts_for_view(
    conn: Connection, settings: AvailabilitySettings, start: datetime, end: datetime,
) -> policies.BookingCounts | None:
    """The counts a slot list or month view needs, or None when the expert sets no limit."""
    if not settings.has_booking_limits:
        return None
    tz = zone(settings.timezone)
    return load_counts(conn, settings, start.astimezone(tz).date(), end.astimezone(tz).date())


def get_availability(store: Store, expert_id: str, *, asked_by: str | None = None) -> AvailabilitySettings:
    with store.read() as conn:
        return load_settings(conn, expert_id, asked_by=asked_by)


def set_availability(
    store: Store, actor: str, expert_id: str, body: dict[str, Any], expected_version: int,
    now: datetime | None = None,
) -> AvailabilitySettings:
    """Replace the settings if they are still at ``expected_version`` (optimistic lock).

    ``version`` in the body, if any, is ignored: the ``If-Match`` precondition decides.
    """
    if actor != expert_id:
        raise Forbidden("only the expert may change their availability")
    if not isinstance(body, dict):
        raise ValidationError("the settings body is a JSON object")
    fields = {k: v for k, v in body.items() if k != "version"}
    parsed = AvailabilitySettings.from_dict(expert_id, fields)
    moment = now_or(now)
    with store.write() as conn:
        user_rows.ensure_user(conn, expert_id, moment)
        version = availability_rows.save_settings(conn, parsed, expected_version, moment)
        return replace(parsed, version=version)


def list_exceptions(
    store: Store, expert_id: str, first: date, last: date, *, asked_by: str | None = None
) -> list[AvailabilityException]:
    if last < first:
        raise ValidationError("'to' must not be before 'from'")
    if (last - first).days > MAX_EXCEPTION_RANGE_DAYS:
        raise ValidationError(f"ask for at most {MAX_EXCEPTION_RANGE_DAYS} days at once")
    with store.read() as conn:
        require_known_expert(conn, expert_id, asked_by)
        found = availability_rows.get_exceptions(conn, expert_id, first, last)
    return [found[d] for d in sorted(found)]


def set_exception(
    store: Store, actor: str, expert_id: str, day: date, body: Any, now: datetime | None = None
) -> AvailabilityException:
    if actor != expert_id:
        raise Forbidden("only the expert may change their exceptions")
    exception = AvailabilityException.from_dict(day, body)
    moment = now_or(now)
    with store.write() as conn:
        user_rows.ensure_user(conn, expert_id, moment)
        availability_rows.put_exception(conn, expert_id, exception, moment)
    return exception


def delete_exception(store: Store, actor: str, expert_id: str, day: date) -> None:
    if actor != expert_id:
        raise Forbidden("only the expert may change their exceptions")
    with store.write() as conn:
        if not availability_rows.delete_exception(conn, expert_id, day):
            raise NotFound(f"no exception on {day.isoformat()}")


@dataclass(frozen=True, slots=True)
class SlotList:
    settings: AvailabilitySettings
    viewer_tz: str
    slots: list[engine.Slot]


def get_slots(
    store: Store, expert_id: str, day: date, duration: int, viewer_tz: str | None = None,
    now: datetime | None = None, *, asked_by: str | None = None, exclude_booking: str | None = None,
) -> SlotList:
    """The slots of one local date; ``exclude_booking``: as if that booking were not there (the slot
    picker of a reschedule shows the booking's own time as free, as ``reschedule_booking`` treats it)."""
    moment = now_or(now)
    if viewer_tz is not None:
        zone(viewer_tz)
    with store.read() as conn:
        settings = load_settings(conn, expert_id, asked_by=asked_by)
        engine.validate_duration(settings, duration)
        window = engine.query_range_for_date(settings, day, viewer_tz)
        exceptions, busy = load_context(conn, settings, window.start, window.end, exclude_booking=exclude_booking)
        counts = _counts_for_view(conn, settings, window.start, window.end)
    slots = engine.slots_for_date(settings, exceptions, busy, day, duration, moment, viewer_tz, counts)
    return SlotList(settings, viewer_tz or settings.timezone, slots)


MAX_SLOT_RANGE_DAYS = 62


def get_slots_range(
    store: Store, expert_id: str, first: date, last: date, duration: int, viewer_tz: str | None = None,
    now: datetime | None = None, *, asked_by: str | None = None,
) -> dict[date, list[engine.Slot]]:
    """Slots of every date from ``first`` to ``last`` (a week or month picker) in one read."""
    if last < first or (last - first).days >= MAX_SLOT_RANGE_DAYS:
        raise ValidationError(f"ask for 1 to {MAX_SLOT_RANGE_DAYS} days at once")
    moment = now_or(now)
    with store.read() as conn:
        settings = load_settings(conn, expert_id, asked_by=asked_by)
        engine.validate_duration(settings, duration)
        window = engine.query_range_for_date(settings, first, viewer_tz)
        end = engine.query_range_for_date(settings, last, viewer_tz).end
        exceptions, busy = load_context(conn, settings, window.start, end)
        counts = _counts_for_view(conn, settings, window.start, end)
    days: dict[date, list[engine.Slot]] = {}
    day = first
    while day <= last:
        days[day] = engine.slots_for_date(settings, exceptions, busy, day, duration, moment, viewer_tz, counts)
        day += timedelta(days=1)
    return days


def get_month(
    store: Store, expert_id: str, year: int, month: int, viewer_tz: str | None = None,
    now: datetime | None = None, *, asked_by: str | None = None,
) -> list[tuple[date, str]]:
    moment = now_or(now)
    if not 1 <= month <= 12 or not 1 <= year <= 9998:
        raise ValidationError("month must be YYYY-MM", field="month")
    with store.read() as conn:
        settings = load_settings(conn, expert_id, asked_by=asked_by)
        whole = engine.month_range(year, month, viewer_tz or settings.timezone)
        pad = timedelta(days=1)
        exceptions, busy = load_context(conn, settings, whole.start - pad, whole.end + pad)
        counts = _counts_for_view(conn, settings, whole.start - pad, whole.end + pad)
    return engine.month_view(settings, exceptions, busy, year, month, moment, viewer_tz, counts)


def get_busy(
    store: Store, expert_id: str, start: datetime, end: datetime, *, asked_by: str | None = None
) -> list[tuple[datetime, datetime]]:
    """Busy intervals (merged, times only: no titles, no booking ids) in ``[start, end)``."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise ValidationError("'to' must be after 'from'")
    if end - start > MAX_BUSY_RANGE:
        raise ValidationError("ask for at most 366 days of busy time at once")
    with store.read() as conn:
        require_known_expert(conn, expert_id, asked_by)
        merged = engine.BusyIndex.from_micros(busy_rows.busy_micros(conn, expert_id, start, end)).intervals()
    return [(max(s, start), min(e, end)) for s, e in merged]
