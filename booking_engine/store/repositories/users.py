"""Repository of ``users``: the id is the token's ``sub``; the row is made on first sight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from booking_engine.store.tables import users


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
