"""Repository of ``worker_heartbeats``: one row per running worker process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from booking_engine.store.worker_tables import worker_heartbeats as hb


def insert(conn: Connection, worker_id: str, node: str, pid: int, now: datetime) -> None:
    conn.execute(hb.insert().values(worker_id=worker_id, node=node, pid=pid, started_at=now, last_seen_at=now))


def touch(conn: Connection, worker_id: str, now: datetime) -> int:
    return int(conn.execute(update(hb).where(hb.c.worker_id == worker_id).values(last_seen_at=now)).rowcount or 0)


def ids_of_node(conn: Connection, node: str) -> list[str]:
    return [r[0] for r in conn.execute(select(hb.c.worker_id).where(hb.c.node == node))]


def delete_ids(conn: Connection, worker_ids: list[str]) -> None:
    if worker_ids:
        conn.execute(delete(hb).where(hb.c.worker_id.in_(worker_ids)))


def seen_since(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    rows = conn.execute(select(hb).where(hb.c.last_seen_at >= since).order_by(hb.c.node)).mappings()
    return [dict(r) for r in rows]


def latest(conn: Connection) -> datetime | None:
    value: datetime | None = conn.execute(select(func.max(hb.c.last_seen_at))).scalar_one_or_none()
    return value
