"""Repository of ``bookings``: the aggregate's row mapping, its optimistic update, lists and scans."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from booking_engine.errors import PreconditionFailed, SlotUnavailable
from booking_engine.model import ACTIVE_STATUSES, Booking, BookingStatus, BookingType, CancelledBy, PaymentStatus
from booking_engine.store.repositories._common import is_exclusion_violation, keyset_page, one
from booking_engine.store.tables import booking_calendar_events, bookings


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
        "payment_status": str(b.payment_status),
        "payment_due_at": b.payment_due_at,
        "paid_at": b.paid_at,
        "reschedule_count": b.reschedule_count,
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
        payment_status=PaymentStatus(row["payment_status"]),
        payment_due_at=row["payment_due_at"],
        paid_at=row["paid_at"],
        reschedule_count=row["reschedule_count"],
    )


def get_booking(conn: Connection, booking_id: str, for_update: bool = False) -> Booking | None:
    row = one(conn, bookings.c.id, booking_id, for_update)
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
    stmt = keyset_page(stmt, bookings.c.start_time, bookings.c.id, after, limit)
    return [booking_from_row(r) for r in conn.execute(stmt).mappings()]


def party_bookings(
    conn: Connection, party_id: str, start_from: datetime, start_to: datetime, limit: int
) -> list[Booking]:
    """Bookings whose user or expert is ``party_id`` starting in ``[start_from, start_to)``, by start."""
    stmt = (
        select(bookings)
        .where(
            or_(bookings.c.user_id == party_id, bookings.c.expert_id == party_id),
            bookings.c.start_time >= start_from,
            bookings.c.start_time < start_to,
        )
        .order_by(bookings.c.start_time, bookings.c.id)
        .limit(limit)
    )
    return [booking_from_row(r) for r in conn.execute(stmt).mappings()]


# Built once (docs/performance.md#prebuilt-statements): the slot list and every booking of an
# expert with limits count these starts.
_ACTIVE_STARTS = select(bookings.c.start_time).where(
    bookings.c.expert_id == bindparam("expert_id"),
    bookings.c.status.in_(ACTIVE_STATUSES),
    bookings.c.start_time >= bindparam("start"),
    bookings.c.start_time < bindparam("end"),
)
_ACTIVE_STARTS_EXCLUDING = _ACTIVE_STARTS.where(bookings.c.id != bindparam("exclude"))


def active_starts(
    conn: Connection, expert_id: str, start: datetime, end: datetime, exclude_booking: str | None = None
) -> list[datetime]:
    """Starts in ``[start, end)`` of the expert's active bookings: what the daily and weekly limits count."""
    stmt = _ACTIVE_STARTS_EXCLUDING if exclude_booking is not None else _ACTIVE_STARTS
    params = {"expert_id": expert_id, "start": start, "end": end, "exclude": exclude_booking}
    return [r[0] for r in conn.execute(stmt, params)]


def due_payment_holds(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Pending bookings still awaiting payment whose hold ended (``payment_due_at <= now``), oldest first."""
    stmt = (
        select(bookings.c.id)
        .where(
            bookings.c.payment_status == str(PaymentStatus.AWAITING_PAYMENT),
            bookings.c.status == str(BookingStatus.PENDING),
            bookings.c.payment_due_at <= now,
        )
        .order_by(bookings.c.payment_due_at)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]


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


def upcoming_active(conn: Connection, expert_id: str, now: datetime) -> list[Booking]:
    """The expert's active bookings that have not ended (the conflict check after a sync)."""
    rows = conn.execute(
        select(bookings).where(
            bookings.c.expert_id == expert_id,
            bookings.c.status.in_(ACTIVE_STATUSES),
            bookings.c.end_time > now,
        )
    ).mappings()
    return [booking_from_row(r) for r in rows]


def unpushed(
    conn: Connection, expert_id: str, connection_id: str, now: datetime, limit: int, destination: str | None
) -> list[Booking]:
    """Upcoming confirmed bookings with no event recorded for the connection (or, given
    ``destination``, with their event in another calendar), soonest first."""
    pushed = select(booking_calendar_events.c.booking_id).where(
        booking_calendar_events.c.connection_id == connection_id
    )
    if destination is not None:
        pushed = pushed.where(booking_calendar_events.c.calendar_id == destination)
    rows = conn.execute(
        select(bookings)
        .where(
            bookings.c.expert_id == expert_id,
            bookings.c.status == str(BookingStatus.CONFIRMED),
            bookings.c.end_time > now,
            bookings.c.id.not_in(pushed),
        )
        .order_by(bookings.c.start_time)
        .limit(limit)
    ).mappings()
    return [booking_from_row(r) for r in rows]
