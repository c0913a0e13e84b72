"""Repository of the ``outbox``: domain events written inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, insert

from booking_engine.model import DomainEvent, new_id
from booking_engine.store.tables import outbox


def add_events(conn: Connection, events: Iterable[DomainEvent], now: datetime) -> list[str]:
    """Write domain events to the outbox inside the caller's transaction; return their ids."""
    rows = [
        {
            "event_id": new_id(),
            "event_type": e.type,
            "aggregate_id": e.aggregate_id,
            "payload": e.payload,
            "created_at": now,
        }
        for e in events
    ]
    if rows:
        conn.execute(insert(outbox), rows)
    return [str(r["event_id"]) for r in rows]
