"""The operator's picture of a running calbook, read from the database (docs/operations.md#health).

``calbook status`` prints it and ``/metrics`` exports it at each scrape. It is read from the
database, never kept in a process's memory, so every API process answers the same, and it
describes the workers (outbox backlog, deliveries, connections) without asking them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from booking_engine.clock import utcnow
from booking_engine.services.heartbeats import WorkerSeen
from booking_engine.store.db import Store
from booking_engine.store.repositories import heartbeats as heartbeat_rows
from booking_engine.store.repositories import operations as queries


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: datetime
    outbox_backlog: int
    outbox_failing: int
    outbox_oldest_at: datetime | None
    webhook_deliveries: dict[str, int] = field(default_factory=dict)
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    connections: dict[tuple[str, str], int] = field(default_factory=dict)
    workers: list[WorkerSeen] = field(default_factory=list)
    """Every worker with a heartbeat row, freshest first (a dead one's row ages out)."""

    @property
    def heartbeat_age_seconds(self) -> float | None:
        """Age of the freshest worker heartbeat; ``None`` when no worker ever beat."""
        if not self.workers:
            return None
        return max((self.taken_at - self.workers[0].last_seen_at).total_seconds(), 0.0)

    def workers_seen_within(self, max_age_seconds: float) -> list[WorkerSeen]:
        return [w for w in self.workers if (self.taken_at - w.last_seen_at).total_seconds() <= max_age_seconds]

    @property
    def outbox_oldest_age_seconds(self) -> float:
        """Age of the oldest undispatched event; 0 with an empty outbox."""
        if self.outbox_oldest_at is None:
            return 0.0
        return max((self.taken_at - self.outbox_oldest_at).total_seconds(), 0.0)

    def connections_with_status(self, status: str) -> int:
        return sum(n for (_, s), n in self.connections.items() if s == status)


def snapshot(store: Store, now: datetime | None = None) -> Snapshot:
    with store.read() as conn:
        backlog, failing, oldest = queries.outbox_backlog(conn)
        return Snapshot(
            taken_at=now or utcnow(),
            outbox_backlog=backlog,
            outbox_failing=failing,
            outbox_oldest_at=oldest,
            webhook_deliveries=queries.webhook_deliveries_by_status(conn),
            notifications=queries.notifications_by_status(conn),
            connections=queries.connections_by_status(conn),
            workers=sorted(
                (WorkerSeen(r["worker_id"], r["node"], r["pid"], r["started_at"], r["last_seen_at"])
                 for r in heartbeat_rows.seen_since(conn, datetime.min.replace(tzinfo=UTC))),
                key=lambda w: w.last_seen_at, reverse=True,
            ),
        )


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """One calendar connection as an operator lists it: whose, which provider, how it fares."""

    id: str
    expert_id: str
    provider: str
    status: str
    account: str | None
    last_synced_at: datetime | None
    last_error: str | None
    sync_requested_at: datetime | None
    created_at: datetime


def list_connections(store: Store, status: str | None = None, expert_id: str | None = None) -> list[ConnectionState]:
    """Every expert's connections (``calbook admin connections``); disconnected ones only by ``status``."""
    with store.read() as conn:
        return [ConnectionState(**row) for row in queries.connections(conn, status, expert_id)]
