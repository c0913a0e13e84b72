"""The notification log: one row per sent (or permanently refused) notification.

Its unique ``idempotency_key`` (``email:<event id>:<user id>``) is what keeps a re-dispatched
outbox event from e-mailing the same person twice.
"""

from __future__ import annotations

from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.worker_tables import notification_log
from worker.db import insert_ignore


def already_logged(store: Store, key: str) -> bool:
    with store.read() as conn:
        found = conn.execute(select(notification_log.c.id).where(notification_log.c.idempotency_key == key)).first()
    return found is not None


def record(
    store: Store, key: str, *, channel: str, event_id: str, event_type: str, recipient: str, status: str,
    detail: str | None = None,
) -> bool:
    """Log a notification; False when the key was already there (someone else sent it)."""
    with store.write() as conn:
        return insert_ignore(conn, notification_log, {
            "idempotency_key": key, "channel": channel, "event_id": event_id, "event_type": event_type,
            "recipient": recipient, "status": status, "detail": detail, "created_at": utcnow(),
        }) == 1
