"""Repository of an expert's availability: ``availability_settings`` (versioned) and ``availability_exceptions``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from booking_engine.errors import PreconditionFailed
from booking_engine.model import AvailabilityException, AvailabilitySettings, DaySchedule, ExceptionKind, Window
from booking_engine.store.tables import availability_exceptions, availability_settings


def _settings_from_row(row: RowMapping) -> AvailabilitySettings:
    weekly = {
        day: DaySchedule(spec["isAvailable"], tuple(Window(w[0], w[1]) for w in spec["windows"]))
        for day, spec in row["weekly_schedule"].items()
    }
    return AvailabilitySettings(
        expert_id=row["expert_id"],
        timezone=row["timezone"],
        weekly=weekly,
        min_duration=row["min_duration_minutes"],
        max_duration=row["max_duration_minutes"],
        buffer=row["buffer_minutes"],
        advance_days=row["advance_days"],
        min_notice=row["min_notice_minutes"],
        increment=row["slot_increment_minutes"],
        hourly_rate_cents=row["hourly_rate_cents"],
        currency=row["currency"],
        auto_confirm=row["auto_confirm"],
        payment_required=row["payment_required"],
        payment_hold_minutes=row["payment_hold_minutes"],
        change_cutoff_minutes=row["change_cutoff_minutes"],
        max_reschedules=row["max_reschedules"],
        max_per_day=row["max_bookings_per_day"],
        max_per_week=row["max_bookings_per_week"],
        version=row["version"],
    )


# Built once (docs/performance.md#prebuilt-statements): every slots, month and booking request
# reads the settings and the exceptions, and building the select() cost more than running it.
_SETTINGS = select(availability_settings).where(availability_settings.c.expert_id == bindparam("expert_id"))
_SETTINGS_FOR_UPDATE = _SETTINGS.with_for_update()
_EXCEPTIONS = select(availability_exceptions).where(
    availability_exceptions.c.expert_id == bindparam("expert_id"),
    availability_exceptions.c.local_date >= bindparam("first"),
    availability_exceptions.c.local_date <= bindparam("last"),
)


def get_settings(conn: Connection, expert_id: str, for_update: bool = False) -> AvailabilitySettings | None:
    """The expert's saved settings, row-locked for the write transaction on request (PostgreSQL)."""
    stmt = _SETTINGS_FOR_UPDATE if for_update else _SETTINGS
    row = conn.execute(stmt, {"expert_id": expert_id}).mappings().first()
    return _settings_from_row(row) if row else None


def save_settings(conn: Connection, settings: AvailabilitySettings, expected_version: int, now: datetime) -> int:
    """Write settings if they are still at ``expected_version``; return the new version."""
    values = {
        "timezone": settings.timezone,
        "weekly_schedule": {
            day: {"isAvailable": s.is_available, "windows": [[w.start, w.end] for w in s.windows]}
            for day, s in settings.weekly.items()
        },
        "min_duration_minutes": settings.min_duration,
        "max_duration_minutes": settings.max_duration,
        "buffer_minutes": settings.buffer,
        "advance_days": settings.advance_days,
        "min_notice_minutes": settings.min_notice,
        "slot_increment_minutes": settings.increment,
        "hourly_rate_cents": settings.hourly_rate_cents,
        "currency": settings.currency,
        "auto_confirm": settings.auto_confirm,
        "payment_required": settings.payment_required,
        "payment_hold_minutes": settings.payment_hold_minutes,
        "change_cutoff_minutes": settings.change_cutoff_minutes,
        "max_reschedules": settings.max_reschedules,
        "max_bookings_per_day": settings.max_per_day,
        "max_bookings_per_week": settings.max_per_week,
        "version": expected_version + 1,
        "updated_at": now,
    }
    if expected_version == 0:
        try:
            with conn.begin_nested():
                conn.execute(insert(availability_settings).values(expert_id=settings.expert_id, **values))
        except IntegrityError as exc:
            raise PreconditionFailed("the settings were created by someone else; reload them") from exc
        return 1
    result = conn.execute(
        update(availability_settings)
        .where(
            availability_settings.c.expert_id == settings.expert_id,
            availability_settings.c.version == expected_version,
        )
        .values(**values)
    )
    if result.rowcount != 1:
        raise PreconditionFailed(f"the settings changed since version {expected_version}; reload them")
    return expected_version + 1


def _exception_from_row(row: RowMapping) -> AvailabilityException:
    return AvailabilityException(
        day=row["local_date"],
        kind=ExceptionKind(row["kind"]),
        windows=tuple(Window(w[0], w[1]) for w in row["windows"]),
        reason=row["reason"],
    )


def get_exceptions(conn: Connection, expert_id: str, first: date, last: date) -> dict[date, AvailabilityException]:
    rows = conn.execute(_EXCEPTIONS, {"expert_id": expert_id, "first": first, "last": last}).mappings()
    return {row["local_date"]: _exception_from_row(row) for row in rows}


def put_exception(conn: Connection, expert_id: str, exc: AvailabilityException, now: datetime) -> None:
    conn.execute(
        delete(availability_exceptions).where(
            availability_exceptions.c.expert_id == expert_id, availability_exceptions.c.local_date == exc.day
        )
    )
    conn.execute(
        insert(availability_exceptions).values(
            expert_id=expert_id,
            local_date=exc.day,
            kind=str(exc.kind),
            windows=[[w.start, w.end] for w in exc.windows],
            reason=exc.reason,
            updated_at=now,
        )
    )


def delete_exception(conn: Connection, expert_id: str, day: date) -> bool:
    result = conn.execute(
        delete(availability_exceptions).where(
            availability_exceptions.c.expert_id == expert_id, availability_exceptions.c.local_date == day
        )
    )
    return result.rowcount > 0
