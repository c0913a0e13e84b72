"""What several repositories share: a row by primary key, the exclusion-violation test, counts, keyset pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, Select, and_, func, or_, select
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


def keyset_page(stmt: Select[Any], key: Any, tie: Any, after: tuple[Any, str] | None, limit: int,
                *, descending: bool = False) -> Select[Any]:
    """``stmt`` ordered by ``(key, tie)`` from just past the cursor ``after``, at most ``limit`` rows.

    A keyset cursor rather than an offset: a page stays stable while rows are added before it,
    and the database walks the index instead of counting skipped rows (docs/api.md#pagination).
    """
    if after is not None:
        if descending:
            stmt = stmt.where(or_(key < after[0], and_(key == after[0], tie < after[1])))
        else:
            stmt = stmt.where(or_(key > after[0], and_(key == after[0], tie > after[1])))
    order = (key.desc(), tie.desc()) if descending else (key, tie)
    return stmt.order_by(*order).limit(limit)
