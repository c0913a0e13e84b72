"""Read-only queries for the operator's picture (``calbook status``, ``/metrics``): small aggregates.

Every query is a count or a minimum over an indexed or retention-bounded table, cheap enough
to run at each Prometheus scrape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from booking_engine.connections import ConnectionStatus
from booking_engine.store.tables import calendar_connections, outbox
from booking_engine.store.worker_tables import notification_log, webhook_deliveries


def outbox_backlog(conn: Connection) -> tuple[int, int, datetime | None]:
    """Undispatched events: how many, how many of them have failed at least once, the oldest's time."""
    pending = outbox.c.dispatched_at.is_(None)
    row = conn.execute(
        select(func.count(), func.count(outbox.c.last_error), func.min(outbox.c.created_at)).where(pending)
    ).one()
    return int(row[0]), int(row[1]), row[2]


def webhook_deliveries_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(webhook_deliveries.c.status, func.count()).group_by(webhook_deliveries.c.status))
    return {str(r[0]): int(r[1]) for r in rows.tuples()}


def notifications_by_status(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(notification_log.c.channel, notification_log.c.status, func.count())
        .group_by(notification_log.c.channel, notification_log.c.status)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows.tuples()}


def connections_by_status(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(calendar_connections.c.provider, calendar_connections.c.status, func.count())
        .group_by(calendar_connections.c.provider, calendar_connections.c.status)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows.tuples()}


def connections(conn: Connection, status: str | None, expert_id: str | None) -> list[dict[str, Any]]:
    """Every connection (disconnected ones only when asked for by status), oldest first."""
    c = calendar_connections.c
    stmt = select(c.id, c.expert_id, c.provider, c.status, c.account, c.last_synced_at, c.last_error,
                  c.sync_requested_at, c.created_at).order_by(c.created_at, c.id)
    stmt = stmt.where(c.status == status) if status else stmt.where(c.status != str(ConnectionStatus.DISCONNECTED))
    if expert_id:
        stmt = stmt.where(c.expert_id == expert_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]
