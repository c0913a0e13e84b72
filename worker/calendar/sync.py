"""Pull busy time for one connection into the store (docs/sync.md#pull), one sync per connection at a time.

The lease in ``calendar_connections`` (not a broker lock) makes "one at a time" hold across
workers, brokers and restarts; a worker that dies mid-sync loses its lease when it expires.
A sync that fails leaves the previous blocks and cursors as they were (each calendar's
blocks and cursor are replaced in one transaction). While it runs, its progress is stored on
the connection and logged now and then (``worker.calendar.progress``); each sync is counted
and timed by provider and result (``worker.metrics``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from booking_engine.clock import utcnow
from booking_engine.connections import CalendarConnection, ConnectionStatus
from booking_engine.services import calendar_sync
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from booking_engine.sync_progress import SyncPhase
from config.settings import Settings
from connectors.base import AuthError, PermanentError, PullResult, RateLimited, TransientError
from worker.calendar import push
from worker.calendar.progress import ProgressTracker
from worker.calendar.providers import expert_timezone, provider_for
from worker.metrics import observe_sync

log = logging.getLogger(__name__)

SYNC_LEASE = timedelta(minutes=10)
RECONCILE_EVERY = timedelta(days=1)


@dataclass(slots=True)
class SyncOutcome:
    status: str
    calendars: int = 0
    blocks: int = 0
    flagged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    backfilled: int = 0


def _blocks(result: PullResult) -> dict[str, list[tuple[Any, Any]]]:
    return {key: [(iv.start, iv.end) for iv in intervals] for key, intervals in result.upserts.items()}


AfterSync = Callable[[Store, CalendarConnection, Settings], object]
"""What a provider does after a successful sync (Google: reconcile its watch channels); ``worker.wiring``."""


def _take_lease(store: Store, connection_id: str, lease_token: datetime | None, now: datetime) -> bool:
    if lease_token is not None:  # the dispatcher's claim took the lease for this message
        return connection_service.adopt_sync_lease(store, connection_id, lease_token, SYNC_LEASE, now=now)
    return connection_service.acquire_sync_lease(store, connection_id, SYNC_LEASE, now=now)


def sync_connection(
    store: Store, connection_id: str, *, settings: Settings, after_sync: AfterSync | None = None,
    force_reconcile: bool = False, lease_token: datetime | None = None,
) -> SyncOutcome:
    """Pull the busy calendars of the connection, within its time budget; schedule its next sync.

    ``lease_token`` is the end of the lease a dispatcher's claim took (``calbook.sync.connection``
    messages carry it): the sync runs only if that claim still holds. Without it (``calbook
    demo``, tests, an old message) the sync takes the lease itself, as before.

    Fair share (docs/sync.md#scheduling): after each calendar, a sync that has run longer than
    ``CALBOOK_WORKER_SYNC_BUDGET_SECONDS`` stops (``partial``); every calendar done is saved
    with its cursor already, and the connection is due again at once, behind those already
    waiting, to continue at the next calendar. A ``TransientError`` is raised after it is
    recorded (status ``error``, the connection's backoff): the caller decides whether to retry.
    ``RateLimited`` (calbook's own shared limit said "not now", docs/rate-limits.md) is no
    failure: nothing was sent, the status stays, and the connection is due again when its turn
    comes, continuing at the calendar it stopped at (``rate_limited``).
    """
    now = utcnow()
    if not _take_lease(store, connection_id, lease_token, now):
        log.info("sync already running or claimed again, skipped", extra={"connection_id": connection_id})
        return SyncOutcome("locked")
    reconciled = False
    tracker: ProgressTracker | None = None
    result = "failed"  # what the metrics count if an unexpected error escapes
    resume_from: int | None = None
    retry_at: datetime | None = None
    index = 0
    budget_ends = time.monotonic() + settings.worker.sync_budget_seconds
    try:
        connection = connection_service.load_for_sync(store, connection_id)
        if connection is None or not connection.syncable:
            return SyncOutcome("skipped")
        tracker = ProgressTracker(store, connection_id, connection.provider,
                                  settings.worker.sync_progress_log_seconds)
        last = connection.last_reconciled_at
        reconcile = force_reconcile or last is None or now - last >= RECONCILE_EVERY
        outcome = SyncOutcome("active")
        timezone = expert_timezone(store, connection.expert_id)
        with provider_for(store, connection, settings=settings) as provider:
            reconciler = provider.reconciler()
            calendars = connection.busy_calendars or [c.id for c in provider.list_calendars()]
            horizon = now + timedelta(days=settings.sync_horizon_days)
            window_start = now - timedelta(days=1)
            first = connection.sync_resume_from or 0
            first = first if first < len(calendars) else 0
            for index, calendar_id in enumerate(calendars):
                if index < first:
                    continue  # done by the budget-stopped sync this one continues
                if index > first and time.monotonic() > budget_ends:
                    resume_from = index
                    break
                tracker.step(SyncPhase.FETCHING, index, len(calendars), outcome.blocks)
                cursor = calendar_sync.get_cursor(store, connection_id, calendar_id)
                if reconcile and cursor and reconciler is not None:
                    pulled = reconciler.reconcile(calendar_id, cursor, window_start, horizon)
                else:
                    pulled = provider.pull(calendar_id, cursor, window_start, horizon, timezone)
                tracker.step(SyncPhase.SAVING, index, len(calendars), outcome.blocks)
                outcome.blocks += calendar_sync.apply_pull(
                    store, connection_id, calendar_id, full=pulled.full, upserts=_blocks(pulled),
                    deleted=pulled.deleted, cursor=pulled.cursor, kept=pulled.kept,
                )
                outcome.warnings.extend(pulled.warnings)
                outcome.calendars += 1
            reconciled = reconcile and resume_from is None
            result = "active" if resume_from is None else "partial"
    except RateLimited as exc:
        retry_at = utcnow() + timedelta(seconds=max(1.0, exc.retry_after or 1.0))
        resume_from = index or None
        log.info("calendar sync waits for its rate limit", extra={
            "connection_id": connection_id, "retry_at": retry_at.isoformat(), "resume_from": resume_from})
        result = "rate_limited"
        return SyncOutcome("rate_limited")
    except AuthError as exc:
        connection_service.set_status(store, connection_id, ConnectionStatus.REAUTH_REQUIRED, str(exc))
        log.warning("calendar credentials refused", extra={"connection_id": connection_id})
        result = "reauth_required"
        return SyncOutcome("reauth_required")
    except PermanentError as exc:
        connection_service.set_status(store, connection_id, ConnectionStatus.ERROR, str(exc))
        log.error("calendar sync failed permanently", extra={"connection_id": connection_id, "error": str(exc)})
        result = "error"
        return SyncOutcome("error")
    except TransientError as exc:
        connection_service.set_status(store, connection_id, ConnectionStatus.ERROR, f"temporary: {exc}")
        result = "transient_error"
        raise
    finally:
        if tracker is not None:
            observe_sync(tracker.provider, result, tracker.end())
        connection_service.schedule_next_sync(
            store, connection_id, settings.worker.sync_schedule(),
            failed=result not in ("active", "partial", "rate_limited"), resume_from=resume_from, retry_at=retry_at)
        connection_service.release_sync_lease(store, connection_id, reconciled=reconciled)
    if resume_from is not None:
        outcome.status = "partial"
        outcome.flagged = calendar_sync.flag_conflicts(store, connection.expert_id)
        log.info("calendar sync stopped by its time budget, continues next", extra={
            "connection_id": connection_id, "calendars": outcome.calendars, "resume_from": resume_from,
            "of": len(calendars)})
        return outcome
    connection_service.set_status(store, connection_id, ConnectionStatus.ACTIVE)
    outcome.flagged = calendar_sync.flag_conflicts(store, connection.expert_id)
    outcome.backfilled = push.backfill(store, connection_id, settings=settings)
    if after_sync is not None:
        after_sync(store, connection, settings)
    log.info("calendar sync done", extra={"connection_id": connection_id, "calendars": outcome.calendars,
                                           "blocks": outcome.blocks, "flagged": len(outcome.flagged)})
    return outcome
