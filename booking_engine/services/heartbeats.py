"""Worker heartbeats: which workers run, and whether one was seen recently (docs/operations.md#health).

Each worker's main process registers when it starts and beats every few seconds; readiness
(``/readyz``) asks ``recent_workers`` whether any is fresh, and the operability tools
(``calbook status``, metrics) can list them. A worker killed with ``kill -9`` leaves its row
behind; it ages out, and the next start of the same node removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.repositories import heartbeats as heartbeat_rows


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    worker_id: str
    node: str
    pid: int
    started_at: datetime
    last_seen_at: datetime


def register(store: Store, worker_id: str, node: str, pid: int, now: datetime | None = None) -> list[str]:
    """Record a starting worker; returns the ids of earlier processes of the same node, which are
    gone for good (a node name runs once at a time) and whose rows are removed."""
    moment = now or utcnow()
    with store.write() as conn:
        known = heartbeat_rows.ids_of_node(conn, node)
        heartbeat_rows.delete_ids(conn, known)
        heartbeat_rows.insert(conn, worker_id, node, pid, moment)
        previous = [w for w in known if w != worker_id]
    return previous


def beat(store: Store, worker_id: str, node: str, pid: int, now: datetime | None = None) -> None:
    """Refresh the worker's row (and put it back if something removed it)."""
    moment = now or utcnow()
    with store.write() as conn:
        if heartbeat_rows.touch(conn, worker_id, moment) == 0:
            heartbeat_rows.insert(conn, worker_id, node, pid, moment)


def unregister(store: Store, worker_id: str) -> None:
    """A worker that stops cleanly takes its row with it."""
    with store.write() as conn:
        heartbeat_rows.delete_ids(conn, [worker_id])


def recent_workers(store: Store, max_age: timedelta, now: datetime | None = None) -> list[WorkerSeen]:
    """Workers whose last heartbeat is at most ``max_age`` old."""
    moment = now or utcnow()
    with store.read() as conn:
        rows = heartbeat_rows.seen_since(conn, moment - max_age)
    return [WorkerSeen(r["worker_id"], r["node"], r["pid"], r["started_at"], r["last_seen_at"]) for r in rows]
