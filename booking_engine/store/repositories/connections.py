"""Repository of ``calendar_connections``: the connection row, its status, config, sync lease and progress.

Rows leave as ``RowMapping``; ``booking_engine.services.connections`` turns them into its
``CalendarConnection`` value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, or_, select, update

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


def take_sync_lease(conn: Connection, connection_id: str, ttl: timedelta, now: datetime, **also: Any) -> bool:
    """The lease row update: wins when no unexpired lease is held, and clears the sync request;
    ``also`` sets more columns in the same statement (the sync's first progress)."""
    result = conn.execute(
        update(cc)
        .where(
            cc.c.id == connection_id,
            cc.c.status != _GONE,
            or_(cc.c.sync_lock_until.is_(None), cc.c.sync_lock_until <= now),
        )
        .values(sync_lock_until=now + ttl, sync_requested_at=None, **also)
    )
    return result.rowcount == 1


def _claimable(statuses: Sequence[str], now: datetime) -> Any:
    """Due, in a status that syncs, and not leased (no lease, or one that ran out)."""
    return and_(cc.c.next_sync_at <= now, cc.c.status.in_(tuple(statuses)),
                or_(cc.c.sync_lock_until.is_(None), cc.c.sync_lock_until <= now))


def claim_due(conn: Connection, statuses: Sequence[str], now: datetime, lease_until: datetime, limit: int,
              only: str | None = None) -> list[str]:
    """Claim up to ``limit`` due connections, most overdue first, in one statement: take their sync
    lease and push their due time to its end (a lost message makes them due again then).

    On PostgreSQL the inner select locks with ``FOR UPDATE SKIP LOCKED`` over the due index, so
    claimers running at once take disjoint sets without waiting on each other; SQLite's write
    transaction (``BEGIN IMMEDIATE``) serialises claimers, and the guard in the WHERE is the same.
    ``only`` claims that one connection, if it is claimable.
    """
    inner = select(cc.c.id).where(_claimable(statuses, now))
    if only is not None:
        inner = inner.where(cc.c.id == only)
    inner = inner.order_by(cc.c.next_sync_at).limit(limit)
    if conn.dialect.name == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    rows = conn.execute(
        update(cc)
        .where(cc.c.id.in_(inner.scalar_subquery()), _claimable(statuses, now))
        .values(sync_lock_until=lease_until, next_sync_at=lease_until)
        .returning(cc.c.id)
    ).all()
    return [r[0] for r in rows]


def adopt_sync_lease(conn: Connection, connection_id: str, token: datetime, ttl: timedelta, now: datetime,
                     **also: Any) -> bool:
    """Take over the lease a claim took (``token`` is its end): wins only for the claim's own
    message, renews the lease for the sync, and clears the sync request as ``take_sync_lease``."""
    result = conn.execute(
        update(cc)
        .where(cc.c.id == connection_id, cc.c.status != _GONE, cc.c.sync_lock_until == token)
        .values(sync_lock_until=now + ttl, sync_requested_at=None, **also)
    )
    return result.rowcount == 1


def give_back_claim(conn: Connection, connection_id: str, token: datetime, now: datetime) -> None:
    conn.execute(update(cc).where(cc.c.id == connection_id, cc.c.sync_lock_until == token)
                 .values(sync_lock_until=None, next_sync_at=now))


def leased_count(conn: Connection, now: datetime) -> int:
    """Connections whose sync is queued or running (their lease holds)."""
    return int(conn.execute(select(func.count()).select_from(cc).where(cc.c.sync_lock_until > now)).scalar_one())


def due_ids(conn: Connection, statuses: Sequence[str], now: datetime, limit: int) -> list[str]:
    """The claimable connections, most overdue first (read only: status pages, tests)."""
    rows = conn.execute(select(cc.c.id).where(_claimable(statuses, now)).order_by(cc.c.next_sync_at).limit(limit))
    return [r[0] for r in rows]
