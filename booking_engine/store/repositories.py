"""Row <-> entity mapping and the queries the services need, one function each.

Every function takes the open ``Connection`` of the caller's transaction: the service
decides the transaction, the repository only reads and writes inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    RowMapping,
    and_,
    cast,
    delete,
    extract,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError

from booking_engine.errors import PreconditionFailed, SlotUnavailable
from booking_engine.model import (
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilitySettings,
    Booking,
    BookingRequest,
    BookingStatus,
    BookingType,
    CancelledBy,
    DaySchedule,
    DomainEvent,
    ExceptionKind,
    ProposedSlot,
    RequestStatus,
    Window,
    new_id,
)
from booking_engine.store.tables import (
    availability_exceptions,
    availability_settings,
    booking_requests,
    bookings,
    busy_blocks,
    outbox,
    users,
)

EXCLUSION_VIOLATION = "23P01"


def is_exclusion_violation(exc: IntegrityError) -> bool:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == EXCLUSION_VIOLATION


# --- users -----------------------------------------------------------------------------


def ensure_user(conn: Connection, user_id: str, now: datetime) -> None:
    """Create the user row on first sight (the id is the token's ``sub``)."""
    if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is not None:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(users).values(id=user_id, created_at=now, updated_at=now).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(
            sqlite_insert(users).values(id=user_id, created_at=now, updated_at=now).on_conflict_do_nothing()
        )


def get_user(conn: Connection, user_id: str) -> RowMapping | None:
    return conn.execute(select(users).where(users.c.id == user_id)).mappings().first()


def update_user(conn: Connection, user_id: str, values: dict[str, Any], now: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values, updated_at=now))


# --- availability ----------------------------------------------------------------------


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
        version=row["version"],
    )


def _one(conn: Connection, key: Any, value: str, for_update: bool) -> RowMapping | None:
    """The row whose primary-key column ``key`` equals ``value``, row-locked on request (PostgreSQL)."""
    stmt = select(key.table).where(key == value)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def get_settings(conn: Connection, expert_id: str, for_update: bool = False) -> AvailabilitySettings | None:
    row = _one(conn, availability_settings.c.expert_id, expert_id, for_update)
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
    rows = conn.execute(
        select(availability_exceptions).where(
            availability_exceptions.c.expert_id == expert_id,
            availability_exceptions.c.local_date >= first,
            availability_exceptions.c.local_date <= last,
        )
    ).mappings()
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


# --- busy time -------------------------------------------------------------------------


def busy_micros(
    conn: Connection, expert_id: str, start: datetime, end: datetime, exclude_booking: str | None = None
) -> list[tuple[int, int]]:
    """Active bookings and imported busy blocks overlapping ``[start, end)``, as epoch microseconds.

    Read as plain integers (no per-row datetime objects): the availability engine indexes
    them directly, which keeps ten thousand busy intervals cheap to load.
    """
    if conn.dialect.name == "postgresql":
        def micros(col: Any) -> Any:
            return cast(func.floor(extract("epoch", col) * 1_000_000), BigInteger)
    else:
        def micros(col: Any) -> Any:
            return type_coerce(col, BigInteger)

    booking_q = select(micros(bookings.c.start_time), micros(bookings.c.end_time)).where(
        bookings.c.expert_id == expert_id,
        bookings.c.status.in_(ACTIVE_STATUSES),
        bookings.c.start_time < end,
        bookings.c.end_time > start,
    )
    if exclude_booking is not None:
        booking_q = booking_q.where(bookings.c.id != exclude_booking)
    block_q = select(micros(busy_blocks.c.start_time), micros(busy_blocks.c.end_time)).where(
        busy_blocks.c.expert_id == expert_id,
        busy_blocks.c.end_time > start,
        busy_blocks.c.start_time < end,
    )
    rows: list[tuple[int, int]] = [(r[0], r[1]) for r in conn.execute(booking_q)]
    rows.extend((r[0], r[1]) for r in conn.execute(block_q))
    return rows


# --- bookings --------------------------------------------------------------------------


def _booking_values(b: Booking, now: datetime) -> dict[str, Any]:
    return {
        "id": b.id,
        "expert_id": b.expert_id,
        "user_id": b.user_id,
        "start_time": b.start,
        "end_time": b.end,
        "blocked_until": b.blocked_until,
        "duration_minutes": b.duration,
        "buffer_minutes": b.buffer,
        "status": str(b.status),
        "type": str(b.type),
        "topic": b.topic,
        "notes": b.notes,
        "price_cents": b.price_cents,
        "currency": b.currency,
        "payment_id": b.payment_id,
        "refund_cents": b.refund_cents,
        "created_at": b.created_at,
        "updated_at": now,
        "confirmed_at": b.confirmed_at,
        "cancelled_at": b.cancelled_at,
        "cancellation_reason": b.cancellation_reason,
        "cancelled_by": str(b.cancelled_by) if b.cancelled_by else None,
        "has_conflict": b.has_conflict,
        "version": b.version,
        "sequence": b.sequence,
        "request_id": b.request_id,
    }


def booking_from_row(row: RowMapping) -> Booking:
    return Booking(
        id=row["id"],
        expert_id=row["expert_id"],
        user_id=row["user_id"],
        start=row["start_time"],
        duration=row["duration_minutes"],
        type=BookingType(row["type"]),
        status=BookingStatus(row["status"]),
        price_cents=row["price_cents"],
        currency=row["currency"],
        buffer=row["buffer_minutes"],
        created_at=row["created_at"],
        topic=row["topic"],
        notes=row["notes"],
        payment_id=row["payment_id"],
        refund_cents=row["refund_cents"],
        confirmed_at=row["confirmed_at"],
        cancelled_at=row["cancelled_at"],
        cancellation_reason=row["cancellation_reason"],
        cancelled_by=CancelledBy(row["cancelled_by"]) if row["cancelled_by"] else None,
        has_conflict=row["has_conflict"],
        version=row["version"],
        sequence=row["sequence"],
        request_id=row["request_id"],
    )


def get_booking(conn: Connection, booking_id: str, for_update: bool = False) -> Booking | None:
    row = _one(conn, bookings.c.id, booking_id, for_update)
    return booking_from_row(row) if row else None


def insert_booking(conn: Connection, booking: Booking, now: datetime) -> None:
    try:
        conn.execute(insert(bookings).values(**_booking_values(booking, now)))
    except IntegrityError as exc:
        if is_exclusion_violation(exc):
            raise SlotUnavailable("the slot was taken a moment ago") from exc
        raise


def update_booking(conn: Connection, booking: Booking, previous_version: int, now: datetime) -> None:
    values = _booking_values(booking, now)
    values.pop("id")
    values.pop("created_at")
    try:
        result = conn.execute(
            update(bookings)
            .where(bookings.c.id == booking.id, bookings.c.version == previous_version)
            .values(**values)
        )
    except IntegrityError as exc:
        if is_exclusion_violation(exc):
            raise SlotUnavailable("the new time was taken a moment ago") from exc
        raise
    if result.rowcount != 1:
        raise PreconditionFailed("the booking changed meanwhile; reload it")


def list_bookings(
    conn: Connection,
    *,
    user_id: str | None = None,
    expert_id: str | None = None,
    statuses: Sequence[str] | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Booking]:
    """Bookings ordered by ``(start_time, id)``; ``after`` is the keyset cursor."""
    stmt = select(bookings)
    if user_id is not None:
        stmt = stmt.where(bookings.c.user_id == user_id)
    if expert_id is not None:
        stmt = stmt.where(bookings.c.expert_id == expert_id)
    if statuses:
        stmt = stmt.where(bookings.c.status.in_(list(statuses)))
    if start_from is not None:
        stmt = stmt.where(bookings.c.start_time >= start_from)
    if start_to is not None:
        stmt = stmt.where(bookings.c.start_time < start_to)
    if after is not None:
        stmt = stmt.where(
            or_(bookings.c.start_time > after[0], and_(bookings.c.start_time == after[0], bookings.c.id > after[1]))
        )
    stmt = stmt.order_by(bookings.c.start_time, bookings.c.id).limit(limit)
    return [booking_from_row(r) for r in conn.execute(stmt).mappings()]


def due_bookings(
    conn: Connection, status: BookingStatus, *, end_before: datetime | None = None,
    start_before: datetime | None = None, limit: int = 500,
) -> list[str]:
    stmt = select(bookings.c.id).where(bookings.c.status == str(status))
    if end_before is not None:
        stmt = stmt.where(bookings.c.end_time <= end_before).order_by(bookings.c.end_time)
    if start_before is not None:
        stmt = stmt.where(bookings.c.start_time <= start_before).order_by(bookings.c.start_time)
    return [r[0] for r in conn.execute(stmt.limit(limit))]


def conflicting_pairs(conn: Connection, limit: int = 100) -> list[tuple[str, str]]:
    """Active bookings of one expert that conflict (docs/domain.md#conflicts-and-buffers, with the booking's buffer)."""
    a = bookings.alias("a")
    b = bookings.alias("b")
    stmt = (
        select(a.c.id, b.c.id)
        .where(
            a.c.expert_id == b.c.expert_id,
            a.c.id < b.c.id,
            a.c.status.in_(ACTIVE_STATUSES),
            b.c.status.in_(ACTIVE_STATUSES),
            a.c.start_time < b.c.blocked_until,
            b.c.start_time < a.c.blocked_until,
        )
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]


# --- booking requests ------------------------------------------------------------------


def _request_values(r: BookingRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "expert_id": r.expert_id,
        "user_id": r.user_id,
        "duration_minutes": r.duration,
        "type": str(r.type),
        "proposed_starts": [p.start.isoformat() for p in r.proposed],
        "status": str(r.status),
        "message": r.message,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "responded_at": r.responded_at,
        "response_message": r.response_message,
        "booking_id": r.booking_id,
        "accepted_index": r.accepted_index,
        "version": r.version,
    }


def request_from_row(row: RowMapping) -> BookingRequest:
    return BookingRequest(
        id=row["id"],
        expert_id=row["expert_id"],
        user_id=row["user_id"],
        duration=row["duration_minutes"],
        type=BookingType(row["type"]),
        proposed=tuple(ProposedSlot(datetime.fromisoformat(s)) for s in row["proposed_starts"]),
        status=RequestStatus(row["status"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        message=row["message"],
        response_message=row["response_message"],
        responded_at=row["responded_at"],
        booking_id=row["booking_id"],
        accepted_index=row["accepted_index"],
        version=row["version"],
    )


def get_request(conn: Connection, request_id: str, for_update: bool = False) -> BookingRequest | None:
    row = _one(conn, booking_requests.c.id, request_id, for_update)
    return request_from_row(row) if row else None


def insert_request(conn: Connection, request: BookingRequest) -> None:
    conn.execute(insert(booking_requests).values(**_request_values(request)))


def update_request(conn: Connection, request: BookingRequest, previous_version: int) -> None:
    values = _request_values(request)
    values.pop("id")
    result = conn.execute(
        update(booking_requests)
        .where(booking_requests.c.id == request.id, booking_requests.c.version == previous_version)
        .values(**values)
    )
    if result.rowcount != 1:
        raise PreconditionFailed("the request changed meanwhile; reload it")


def list_requests(
    conn: Connection,
    *,
    user_id: str | None = None,
    expert_id: str | None = None,
    statuses: Sequence[str] | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[BookingRequest]:
    """Requests newest first, ordered by ``(created_at desc, id desc)``; ``after`` is the cursor."""
    stmt = select(booking_requests)
    if user_id is not None:
        stmt = stmt.where(booking_requests.c.user_id == user_id)
    if expert_id is not None:
        stmt = stmt.where(booking_requests.c.expert_id == expert_id)
    if statuses:
        stmt = stmt.where(booking_requests.c.status.in_(list(statuses)))
    if after is not None:
        stmt = stmt.where(
            or_(
                booking_requests.c.created_at < after[0],
                and_(booking_requests.c.created_at == after[0], booking_requests.c.id < after[1]),
            )
        )
    stmt = stmt.order_by(booking_requests.c.created_at.desc(), booking_requests.c.id.desc()).limit(limit)
    return [request_from_row(r) for r in conn.execute(stmt).mappings()]


def due_requests(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    stmt = (
        select(booking_requests.c.id)
        .where(booking_requests.c.status == str(RequestStatus.PENDING), booking_requests.c.expires_at <= now)
        .order_by(booking_requests.c.expires_at)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]


# --- outbox ----------------------------------------------------------------------------


def add_events(conn: Connection, events: Iterable[DomainEvent], now: datetime) -> list[str]:
    """Write domain events to the outbox inside the caller's transaction; return their ids."""
    rows = [
        {
            "event_id": new_id(),
            "event_type": e.type,
            "aggregate_id": e.aggregate_id,
            "payload": e.payload,
            "created_at": now,
        }
        for e in events
    ]
    if rows:
        conn.execute(insert(outbox), rows)
    return [r["event_id"] for r in rows]


def count_rows(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

