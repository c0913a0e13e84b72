"""Repository of ``webhook_subscriptions``: owner-scoped, the signing secret stored encrypted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select

from booking_engine.store.tables import webhook_subscriptions as ws


def count_of_owner(conn: Connection, owner_id: str) -> int:
    return len(conn.execute(select(ws.c.id).where(ws.c.owner_id == owner_id)).all())


def insert_subscription(conn: Connection, **values: Any) -> None:
    conn.execute(insert(ws).values(**values))


def get(conn: Connection, subscription_id: str) -> RowMapping:
    return conn.execute(select(ws).where(ws.c.id == subscription_id)).mappings().one()


def list_of_owner(conn: Connection, owner_id: str) -> list[RowMapping]:
    return list(conn.execute(select(ws).where(ws.c.owner_id == owner_id).order_by(ws.c.created_at, ws.c.id)).mappings())


def delete_of_owner(conn: Connection, owner_id: str, subscription_id: str) -> bool:
    result = conn.execute(delete(ws).where(ws.c.id == subscription_id, ws.c.owner_id == owner_id))
    return result.rowcount > 0


def active_of_owners(conn: Connection, owner_ids: Sequence[str]) -> list[RowMapping]:
    return list(conn.execute(select(ws).where(ws.c.owner_id.in_(list(owner_ids)), ws.c.active.is_(True))).mappings())
