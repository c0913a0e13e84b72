"""Repository of ``users``: the id is the token's ``sub``; the row is made on first sight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, and_, bindparam, or_, select, update

from booking_engine.store.tables import availability_settings, users

# Built once (docs/performance.md#prebuilt-statements): read on every booking and most reads.
_USER = select(users).where(users.c.id == bindparam("user_id"))
_USER_EXISTS = select(users.c.id).where(users.c.id == bindparam("user_id"))


def ensure_user(conn: Connection, user_id: str, now: datetime) -> None:
    """Create the user row on first sight (the id is the token's ``sub``)."""
    if conn.execute(_USER_EXISTS, {"user_id": user_id}).first() is not None:
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
    return conn.execute(_USER, {"user_id": user_id}).mappings().first()


def update_user(conn: Connection, user_id: str, values: dict[str, Any], now: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values, updated_at=now))


def _experts() -> Select[Any]:
    """Users joined to their published settings (an expert is listed once they have saved a schedule)."""
    s = availability_settings.c
    return select(
        users, s.timezone.label("settings_timezone"), s.hourly_rate_cents, s.currency, s.min_duration_minutes,
        s.max_duration_minutes,
    ).join(availability_settings, availability_settings.c.expert_id == users.c.id)


def published_experts(conn: Connection, after: tuple[datetime, str] | None, limit: int) -> list[RowMapping]:
    query = _experts()
    if after is not None:
        at, last_id = after
        query = query.where(or_(users.c.created_at > at, and_(users.c.created_at == at, users.c.id > last_id)))
    query = query.order_by(users.c.created_at, users.c.id).limit(limit)
    return list(conn.execute(query).mappings())


def published_expert(conn: Connection, expert_id: str) -> RowMapping | None:
    return conn.execute(_experts().where(users.c.id == expert_id)).mappings().first()
