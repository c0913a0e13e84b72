"""What makes an expert busy: active bookings and imported busy blocks, read together.

Availability reads them as epoch microseconds (``busy_micros``); the conflict check after a
sync reads the blocks of a range as datetimes (``busy_blocks_between``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CompoundSelect, Connection, bindparam, cast, extract, func, select, type_coerce

from booking_engine.model import ACTIVE_STATUSES
from booking_engine.store.tables import bookings, busy_blocks


def _micros_pg(col: Any) -> Any:
    return cast(func.floor(extract("epoch", col) * 1_000_000), BigInteger)


def _micros_sqlite(col: Any) -> Any:
    return type_coerce(col, BigInteger)  # UTCDateTime stores epoch microseconds on SQLite


def _busy_statement(micros: Callable[[Any], Any], excluding: bool) -> CompoundSelect[Any]:
    booking_q = select(micros(bookings.c.start_time), micros(bookings.c.end_time)).where(
        bookings.c.expert_id == bindparam("expert_id"),
        bookings.c.status.in_(ACTIVE_STATUSES),
        bookings.c.start_time < bindparam("end"),
        bookings.c.end_time > bindparam("start"),
    )
    if excluding:
        booking_q = booking_q.where(bookings.c.id != bindparam("exclude"))
    block_q = select(micros(busy_blocks.c.start_time), micros(busy_blocks.c.end_time)).where(
        busy_blocks.c.expert_id == bindparam("expert_id"),
        busy_blocks.c.end_time > bindparam("start"),
        busy_blocks.c.start_time < bindparam("end"),
    )
    return booking_q.union_all(block_q)


# Built once (docs/performance.md#prebuilt-statements): building these on every slots request
# cost more CPU than running them. Keyed by (PostgreSQL?, excluding a booking?).
_BUSY = {
    (pg, excluding): _busy_statement(_micros_pg if pg else _micros_sqlite, excluding)
    for pg in (True, False) for excluding in (True, False)
}


def busy_micros(
    conn: Connection, expert_id: str, start: datetime, end: datetime, exclude_booking: str | None = None
) -> list[tuple[int, int]]:
    """Active bookings and imported busy blocks overlapping ``[start, end)``, as epoch microseconds.

    Read as plain integers (no per-row datetime objects): the availability engine indexes
    them directly, which keeps ten thousand busy intervals cheap to load. One statement (a
    ``UNION ALL``), so one round trip, for both sources.
    """
    stmt = _BUSY[(conn.dialect.name == "postgresql", exclude_booking is not None)]
    params: dict[str, Any] = {"expert_id": expert_id, "start": start, "end": end}
    if exclude_booking is not None:
        params["exclude"] = exclude_booking
    return [(r[0], r[1]) for r in conn.execute(stmt, params)]


def busy_blocks_between(
    conn: Connection, expert_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Imported busy blocks of the expert overlapping ``[start, end)``."""
    rows = conn.execute(
        select(busy_blocks.c.start_time, busy_blocks.c.end_time).where(
            busy_blocks.c.expert_id == expert_id, busy_blocks.c.end_time > start, busy_blocks.c.start_time < end
        )
    ).all()
    return [(r[0], r[1]) for r in rows]
