"""The Celery side of calendar sync, called in process: what is due, how it retries, cleanup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from booking_engine.model import AvailabilitySettings
from booking_engine.services import connections
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox
from config.settings import Settings
from connectors.base import AuthError, PermanentError, TransientError
from tests.support.sync import EXPERT, connect
from worker import outbox as outbox_module
from worker import wiring
from worker.calendar.dispatch import dispatch_due_syncs
from worker.outbox import OutboxEvent
from worker.tasks import sync as sync_tasks


def handle(store: Store, event: OutboxEvent) -> outbox_module.Outcome:
    """One event through the worker's own handler table, as the dispatch task runs it."""
    settings = Settings()
    return outbox_module.handle(store, event, wiring.outbox_handlers(settings), settings=settings)


def test_due_connections_are_claimed_once(
    store: Store, expert: AvailabilitySettings, calendar_url: str,
) -> None:
    fresh = connect(store, calendar_url)
    synced = connect(store, calendar_url)
    wiring.sync_connection(store, synced, Settings())
    waiting = connect(store, calendar_url)
    connections.set_status(store, waiting, "reauth_required", "401")
    sent: list[connections.SyncClaim] = []

    class Recording:
        def sync_claimed(self, claim: connections.SyncClaim) -> bool:
            sent.append(claim)
            return True

    knobs = Settings().worker
    assert dispatch_due_syncs(store, Recording(), knobs) == 1
    assert [c.connection_id for c in sent] == [fresh]
    assert dispatch_due_syncs(store, Recording(), knobs) == 0  # claimed: not queued twice

    assert connections.request_sync(store, EXPERT, synced) is True
    assert connections.request_sync(store, EXPERT, synced) is False  # coalesced
    assert dispatch_due_syncs(store, Recording(), knobs, connection_id=synced) == 1
    assert [c.connection_id for c in sent] == [fresh, synced]


def test_periodic_sync_is_the_dispatcher_on_the_beat_schedule() -> None:
    entry = wiring.beat_schedule(Settings())["calendar-sync"]
    assert entry["task"] == "calbook.sync.dispatch" and entry["schedule"] == 30


def test_provider_errors_are_not_retried_by_celery() -> None:
    """The connection's own backoff is the retry of a provider error (docs/sync.md#scheduling)."""
    task: Any = sync_tasks.sync_connection
    assert not any(issubclass(TransientError, e) for e in task.autoretry_for)
    assert not any(issubclass(AuthError, e) or issubclass(PermanentError, e) for e in task.autoretry_for)
    assert task.retry_backoff and task.retry_jitter and task.max_retries  # infrastructure trouble only
    assert task.acks_late


def test_disconnect_cleanup_forgets_the_credentials(
    store: Store, expert: AvailabilitySettings, calendar_url: str
) -> None:
    connection_id = connect(store, calendar_url)
    connections.disconnect(store, EXPERT, connection_id)
    with store.read() as conn:
        row = conn.execute(select(outbox).where(outbox.c.event_type == "connection.disconnected")).mappings().one()


    handle(store, OutboxEvent(row["id"], row["event_id"], row["event_type"], row["aggregate_id"],
                              dict(row["payload"]), row["created_at"], row["attempts"]))
    with store.read() as conn:
        secret = conn.execute(select(calendar_connections.c.credentials)
                              .where(calendar_connections.c.id == connection_id)).scalar()
    assert secret is None
