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
from booking_engine.services import calendar_sync, sync_runs
from booking_engine.services.sync_runs import SyncEnd
from booking_engine.store.db import Store
from booking_engine.sync_progress import SyncPhase
from config.settings import Settings
from connectors.base import AuthError, PermanentError, PullResult, RateLimited, TransientError
from worker.calendar import push
from worker.calendar.progress import ProgressTracker
from worker.calendar.providers import provider_for
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


def _unchanged(pulled: PullResult, cursor: dict[str, Any] | None) -> bool:
    """A pull that changes nothing: not a full listing (whose emptiness would mean "delete every
    block"), nothing upserted or deleted, and the cursor it hands back is the one it was given
    (a CalDAV ctag that did not move, a feed's 304). Its transaction would write the same cursor
    back, so it is skipped: the commonest poll costs no transaction (docs/scaling.md#database-work-per-sync)."""
    return (not pulled.full and not pulled.upserts and not pulled.deleted and cursor is not None
            and pulled.cursor == cursor)


def _ended(result: str, error: str | None = None, *, resume_from: int | None = None,
           retry_at: datetime | None = None, reconciled: bool = False) -> SyncEnd:
    """What ``finish_sync`` records for a sync that ended with ``result`` (the metrics' label)."""
    status = {"active": ConnectionStatus.ACTIVE, "reauth_required": ConnectionStatus.REAUTH_REQUIRED,
              "error": ConnectionStatus.ERROR, "transient_error": ConnectionStatus.ERROR}.get(result)
    return SyncEnd(status=status, error=error, failed=result not in ("active", "partial", "rate_limited"),
                   resume_from=resume_from, retry_at=retry_at, reconciled=reconciled,
                   flag=result in ("active", "partial"))


def sync_connection(
    store: Store, connection_id: str, *, settings: Settings, after_sync: AfterSync | None = None,
    force_reconcile: bool = False, lease_token: datetime | None = None,
) -> SyncOutcome:
    """Pull the busy calendars of the connection, within its time budget; schedule its next sync.

    ``lease_token`` is the end of the lease a dispatcher's claim took (``calbook.sync.connection``
    messages carry it): the sync runs only if that claim still holds. Without it (``calbook
    demo``, tests, an old message) the sync takes the lease itself, as before.

    The store sees a sync as one transaction to start, one per calendar and one to finish
    (``booking_engine.services.sync_runs``, docs/scaling.md#database-work-per-sync).

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
    started = sync_runs.start_sync(store, connection_id, SYNC_LEASE, token=lease_token, now=now)
    if started is None:
        log.info("sync already running or claimed again, skipped", extra={"connection_id": connection_id})
        return SyncOutcome("locked")
    connection = started.connection
    tracker = ProgressTracker(store, connection_id, connection.provider, settings.worker.sync_progress_log_seconds,
                              (started.phase, 0, len(connection.busy_calendars) or None, 0))
    result = "failed"  # what the metrics count, and finish_sync records, if an unexpected error escapes
    end = _ended(result)
    outcome = SyncOutcome("active")
    calendars: list[str] = []
    index = 0
    budget_ends = time.monotonic() + settings.worker.sync_budget_seconds
    try:
        if not connection.syncable:
            result, outcome = "skipped", SyncOutcome("skipped")
            return outcome
        last = connection.last_reconciled_at
        reconcile = force_reconcile or last is None or now - last >= RECONCILE_EVERY
        with provider_for(store, connection, settings=settings, timezone=started.timezone) as provider:
            reconciler = provider.reconciler()
            calendars = connection.busy_calendars or [c.id for c in provider.list_calendars()]
            horizon = now + timedelta(days=settings.sync_horizon_days)
            window_start = now - timedelta(days=1)
            first = connection.sync_resume_from or 0
            first = first if first < len(calendars) else 0
            resume_from: int | None = None
            for index, calendar_id in enumerate(calendars):
                if index < first:
                    continue  # done by the budget-stopped sync this one continues
                if index > first and time.monotonic() > budget_ends:
                    resume_from = index
                    break
                tracker.step(SyncPhase.FETCHING, index, len(calendars), outcome.blocks)
                cursor = started.cursors.get(calendar_id)
                if reconcile and cursor and reconciler is not None:
                    pulled = reconciler.reconcile(calendar_id, cursor, window_start, horizon)
                else:
                    pulled = provider.pull(calendar_id, cursor, window_start, horizon, started.timezone)
                outcome.warnings.extend(pulled.warnings)
                outcome.calendars += 1
                if _unchanged(pulled, cursor):
                    continue  # nothing to write: its blocks and cursor are what the last sync saved
                upserts = _blocks(pulled)
                tracker.step(SyncPhase.SAVING, index, len(calendars), outcome.blocks,
                             pulled=len(upserts) + len(pulled.deleted))
                following = index + 1 < len(calendars)
                outcome.blocks += calendar_sync.apply_pull(
                    store, connection_id, calendar_id, full=pulled.full, upserts=upserts,
                    deleted=pulled.deleted, cursor=pulled.cursor, kept=pulled.kept,
                    progress=tracker.after_calendar(index + 1, len(calendars), outcome.blocks) if following else None,
                )
        if resume_from is None:
            result, end = "active", _ended("active", reconciled=reconcile)
        else:
            outcome.status = result = "partial"
            end = _ended(result, resume_from=resume_from)
    except RateLimited as exc:
        retry_at = utcnow() + timedelta(seconds=max(1.0, exc.retry_after or 1.0))
        log.info("calendar sync waits for its rate limit", extra={
            "connection_id": connection_id, "retry_at": retry_at.isoformat(), "resume_from": index or None})
        result, outcome = "rate_limited", SyncOutcome("rate_limited")
        end = _ended(result, resume_from=index or None, retry_at=retry_at)
    except AuthError as exc:
        log.warning("calendar credentials refused", extra={"connection_id": connection_id})
        result, outcome = "reauth_required", SyncOutcome("reauth_required")
        end = _ended(result, str(exc))
    except PermanentError as exc:
        log.error("calendar sync failed permanently", extra={"connection_id": connection_id, "error": str(exc)})
        result, outcome = "error", SyncOutcome("error")
        end = _ended(result, str(exc))
    except TransientError as exc:
        result = "transient_error"
        end = _ended(result, f"temporary: {exc}")
        raise
    finally:
        finished = sync_runs.finish_sync(store, connection_id, end, settings.worker.sync_schedule())
        outcome.flagged = finished.flagged
        if result != "skipped":
            observe_sync(tracker.provider, result, tracker.seconds())
    if outcome.status == "partial":
        log.info("calendar sync stopped by its time budget, continues next", extra={
            "connection_id": connection_id, "calendars": outcome.calendars, "resume_from": end.resume_from,
            "of": len(calendars)})
        return outcome
    if outcome.status != "active" or finished.status != ConnectionStatus.ACTIVE:
        return outcome  # a failure, or disconnected while syncing: nothing to write back
    outcome.backfilled = push.backfill(store, connection, settings=settings)
    if after_sync is not None:
        after_sync(store, connection, settings)
    log.info("calendar sync done", extra={"connection_id": connection_id, "calendars": outcome.calendars,
                                           "blocks": outcome.blocks, "flagged": len(outcome.flagged)})
    return outcome
