"""Repository of ``calendar_connections``: the connection row, its status, config, sync lease and progress.

Rows leave as ``RowMapping``; ``booking_engine.services.connections`` turns them into its
``CalendarConnection`` value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, or_, select, update

from booking_engine.connections import ConnectionStatus
from booking_engine.store.repositories._common import one
from booking_engine.store.tables import calendar_connections as cc

_GONE = str(ConnectionStatus.DISCONNECTED)


def get(conn: Connection, connection_id: str, for_update: bool = False) -> RowMapping | None:
    return one(conn, cc.c.id, connection_id, for_update)


def count_not_disconnected(conn: Connection, expert_id: str) -> int:
    return len(conn.execute(select(cc.c.id).where(cc.c.expert_id == expert_id, cc.c.status != _GONE)).all())


def insert_connection(conn: Connection, **values: Any) -> None:
    conn.execute(insert(cc).values(**values))


def list_not_disconnected(conn: Connection, expert_id: str) -> list[RowMapping]:
    return list(
        conn.execute(
            select(cc)
            .where(cc.c.expert_id == expert_id, cc.c.status != _GONE)
            .order_by(cc.c.created_at, cc.c.id)
        ).mappings()
    )


def of_expert_with_status(conn: Connection, expert_id: str, statuses: Sequence[str]) -> list[RowMapping]:
    stmt = (
        select(cc)
        .where(cc.c.expert_id == expert_id, cc.c.status.in_(tuple(statuses)))
        .order_by(cc.c.created_at, cc.c.id)
    )
    return list(conn.execute(stmt).mappings())


def update_connection(conn: Connection, connection_id: str, **values: Any) -> int:
    """Set columns of one connection; returns the rows changed (0 when it is gone)."""
    return int(conn.execute(update(cc).where(cc.c.id == connection_id).values(**values)).rowcount or 0)


def forget_credentials(conn: Connection, connection_id: str) -> None:
    """Wipe the credentials of a connection that is disconnected (and only then)."""
    conn.execute(update(cc).where(cc.c.id == connection_id, cc.c.status == _GONE).values(credentials=None))


def take_sync_lease(conn: Connection, connection_id: str, ttl: timedelta, now: datetime) -> bool:
    """The lease row update: wins when no unexpired lease is held, and clears the sync request."""
    result = conn.execute(
        update(cc)
        .where(
            cc.c.id == connection_id,
            cc.c.status != _GONE,
            or_(cc.c.sync_lock_until.is_(None), cc.c.sync_lock_until <= now),
        )
        .values(sync_lock_until=now + ttl, sync_requested_at=None)
    )
    return result.rowcount == 1


def due_for_sync(
    conn: Connection, statuses: Sequence[str], providers: Sequence[str], stale_before: datetime, limit: int
) -> list[str]:
    """Connections in ``statuses`` that asked for a sync, never synced, or last synced at or before ``stale_before``."""
    rows = conn.execute(
        select(cc.c.id)
        .where(
            cc.c.status.in_(tuple(statuses)),
            cc.c.provider.in_(tuple(providers)),
            or_(
                cc.c.sync_requested_at.is_not(None), cc.c.last_synced_at.is_(None), cc.c.last_synced_at <= stale_before
            ),
        )
        .order_by(cc.c.last_synced_at)
        .limit(limit)
    ).all()
    return [r[0] for r in rows]
