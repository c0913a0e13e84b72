"""Small SQL helpers the worker's bookkeeping shares across SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any] | list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; returns how many rows were really inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values).on_conflict_do_nothing()
    return int(conn.execute(stmt).rowcount or 0)


def upsert(conn: Connection, table: Table, values: dict[str, Any], key: tuple[str, ...]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET the other given columns."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values)
    changes = {name: stmt.excluded[name] for name in values if name not in key}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=changes))


def skip_locked(conn: Connection, stmt: Select[Any], of: Table) -> Select[Any]:
    """Claim rows without waiting on other claimers (PostgreSQL); SQLite's ``BEGIN IMMEDIATE``
    already serialises the whole claiming transaction."""
    if conn.dialect.name == "postgresql":
        return stmt.with_for_update(of=of, skip_locked=True)
    return stmt
