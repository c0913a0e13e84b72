"""Repository of ``oauth_states``: pending OAuth authorizations, keyed by the hash of their state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select

from booking_engine.store.tables import oauth_states


def delete_expired(conn: Connection, now: datetime) -> None:
    conn.execute(delete(oauth_states).where(oauth_states.c.expires_at <= now))


def keys_of_expert_newest_first(conn: Connection, expert_id: str) -> list[str]:
    rows = conn.execute(
        select(oauth_states.c.state)
        .where(oauth_states.c.expert_id == expert_id)
        .order_by(oauth_states.c.created_at.desc())
    ).all()
    return [r[0] for r in rows]


def delete_keys(conn: Connection, keys: Sequence[str]) -> None:
    conn.execute(delete(oauth_states).where(oauth_states.c.state.in_(list(keys))))


def insert_state(conn: Connection, **values: Any) -> None:
    conn.execute(insert(oauth_states).values(**values))


def take(conn: Connection, key: str) -> RowMapping | None:
    """The row for ``key``, deleted in the same transaction (single use)."""
    row = conn.execute(select(oauth_states).where(oauth_states.c.state == key)).mappings().first()
    if row is not None:
        conn.execute(delete(oauth_states).where(oauth_states.c.state == key))
    return row
