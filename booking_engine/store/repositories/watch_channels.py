"""Repository of ``watch_channels``: Google push-notification channels, live or stopped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, exists, insert, select, update

from booking_engine.store.tables import calendar_connections, watch_channels


def insert_channel(conn: Connection, **values: Any) -> None:
    conn.execute(insert(watch_channels).values(**values))


def find_live(conn: Connection, channel_id: str) -> RowMapping | None:
    """The not-stopped channel with this id, with its connection's ``status``."""
    return conn.execute(
        select(watch_channels, calendar_connections.c.status)
        .join(calendar_connections, calendar_connections.c.id == watch_channels.c.connection_id)
        .where(watch_channels.c.id == channel_id, watch_channels.c.stopped_at.is_(None))
    ).mappings().first()


def live_of_connection(conn: Connection, connection_id: str) -> list[RowMapping]:
    return list(
        conn.execute(
            select(watch_channels)
            .where(watch_channels.c.connection_id == connection_id, watch_channels.c.stopped_at.is_(None))
            .order_by(watch_channels.c.created_at, watch_channels.c.id)
        ).mappings()
    )


def mark_stopped(conn: Connection, channel_id: str, now: datetime) -> None:
    conn.execute(
        update(watch_channels)
        .where(watch_channels.c.id == channel_id, watch_channels.c.stopped_at.is_(None))
        .values(stopped_at=now)
    )


def connections_to_watch(
    conn: Connection, provider: str, statuses: Sequence[str], renew_before: datetime, limit: int
) -> list[str]:
    """Connections of ``provider`` in ``statuses`` with a live channel expiring before
    ``renew_before``, with none, or whose live channels watch other calendars than the busy ones."""
    syncable = (calendar_connections.c.provider == provider, calendar_connections.c.status.in_(tuple(statuses)))
    live = and_(watch_channels.c.connection_id == calendar_connections.c.id, watch_channels.c.stopped_at.is_(None))
    rows = conn.execute(
        select(calendar_connections.c.id)
        .where(
            *syncable,
            (exists().where(live, watch_channels.c.expiration < renew_before) | ~exists().where(live)),
        )
        .order_by(calendar_connections.c.id)
        .limit(limit)
    ).all()
    due = [r[0] for r in rows]
    watched: dict[str, set[str]] = {}
    for connection_id, calendar_id in conn.execute(
        select(watch_channels.c.connection_id, watch_channels.c.calendar_id)
        .join(calendar_connections, calendar_connections.c.id == watch_channels.c.connection_id)
        .where(watch_channels.c.stopped_at.is_(None), *syncable)
    ):
        watched.setdefault(connection_id, set()).add(calendar_id)
    if watched:
        configs = conn.execute(
            select(calendar_connections.c.id, calendar_connections.c.config)
            .where(calendar_connections.c.id.in_(sorted(watched)))
        ).all()
        changed = {cid for cid, config in configs if set((config or {}).get("busyCalendars") or []) != watched[cid]}
        due = sorted({*due, *changed})[:limit]
    return due


def set_expiration(conn: Connection, channel_id: str, expiration: datetime) -> None:
    """A renewed channel (Microsoft subscriptions are extended in place, not replaced)."""
    conn.execute(update(watch_channels).where(watch_channels.c.id == channel_id).values(expiration=expiration))
