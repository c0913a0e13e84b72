"""Repository of ``booking_requests``: row mapping, optimistic update, lists and the expiry scan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from booking_engine.errors import PreconditionFailed
from booking_engine.model import BookingRequest, BookingType, ProposedSlot, RequestStatus
from booking_engine.store.repositories._common import keyset_page, one
from booking_engine.store.tables import booking_requests


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
    row = one(conn, booking_requests.c.id, request_id, for_update)
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
    stmt = keyset_page(stmt, booking_requests.c.created_at, booking_requests.c.id, after, limit, descending=True)
    return [request_from_row(r) for r in conn.execute(stmt).mappings()]


def due_requests(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    stmt = (
        select(booking_requests.c.id)
        .where(booking_requests.c.status == str(RequestStatus.PENDING), booking_requests.c.expires_at <= now)
        .order_by(booking_requests.c.expires_at)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]
