"""What several repositories share: a row by primary key, the exclusion-violation test, counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, func, select
from sqlalchemy.exc import IntegrityError

EXCLUSION_VIOLATION = "23P01"


def is_exclusion_violation(exc: IntegrityError) -> bool:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == EXCLUSION_VIOLATION


def one(conn: Connection, key: Any, value: str, for_update: bool = False) -> RowMapping | None:
    """The row whose primary-key column ``key`` equals ``value``, row-locked on request (PostgreSQL)."""
    stmt = select(key.table).where(key == value)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def count_rows(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
