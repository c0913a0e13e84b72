"""A sync's start and finish, one transaction each (docs/scaling.md#database-work-per-sync).

An incremental sync of a calendar that did not change is a few milliseconds of database work;
at ten thousand connections polled every few minutes that work is the database's load, and one
transaction per step (lease, load, time zone, progress, cursor, schedule, release, status,
conflicts) made it three times what it needs to be. So a sync *starts* in one transaction: it
takes the lease (or adopts its claim's), stores its first progress, and reads the connection,
the expert's time zone and every calendar's cursor. It *finishes* in one: its outcome on the
status, the next due time, the lease released, the progress cleared, and conflicts with the new
busy time flagged. Between them each calendar is one transaction (``calendar_sync.apply_pull``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from booking_engine.connections import CalendarConnection, ConnectionStatus
from booking_engine.services._common import now_or
from booking_engine.services.availability import load_settings
from booking_engine.services.calendar_sync import flag_conflicts_in, log_conflicts
from booking_engine.services.connections import from_row, next_due, status_change
from booking_engine.store.db import Store
from booking_engine.store.repositories import calendar_sync as sync_rows
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.sync_progress import CLEARED, SyncPhase, progress_columns
from booking_engine.sync_schedule import SyncSchedule

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncStart:
    """What a sync needs from the store, read as its lease was taken."""

    connection: CalendarConnection  # with its (encrypted) credentials
    timezone: str  # the expert's, for floating times and all-day events
    cursors: dict[str, dict[str, Any]]  # calendar id -> the cursor its last sync saved
    phase: SyncPhase  # the progress stored: ``fetching`` the first calendar when the busy list is known


@dataclass(frozen=True, slots=True)
class SyncEnd:
    """How a sync ended, for ``finish_sync``.

    ``status`` is what the connection's status becomes (None: as it is, for a sync stopped by its
    budget or its rate limit, or one that failed for calbook's own reasons); ``failed`` counts
    towards the backoff; ``flag`` asks for the conflict check (new busy time was saved).
    """

    status: ConnectionStatus | None = None
    error: str | None = None
    failed: bool = False
    resume_from: int | None = None
    retry_at: datetime | None = None
    reconciled: bool = False
    flag: bool = False


def start_sync(store: Store, connection_id: str, lease: timedelta, *, token: datetime | None = None,
               now: datetime | None = None) -> SyncStart | None:
    """Take the sync lease (``token``: adopt the one a dispatcher's claim took) and read what the sync
    needs; None when another sync holds it, the claim was claimed again, or the connection is gone."""
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id)
        if row is None:
            return None
        busy = (row["config"] or {}).get("busyCalendars") or []
        phase = SyncPhase.FETCHING if busy and not row["sync_resume_from"] else SyncPhase.LISTING
        progress = {**CLEARED, **progress_columns(phase, 0, len(busy) or None, 0, moment), "sync_started_at": moment}
        if token is not None:
            won = connection_rows.adopt_sync_lease(conn, connection_id, token, lease, moment, **progress)
        else:
            won = connection_rows.take_sync_lease(conn, connection_id, lease, moment, **progress)
        if not won:
            return None
        timezone = load_settings(conn, row["expert_id"]).timezone
        cursors = sync_rows.cursors_of(conn, connection_id)
    return SyncStart(from_row(row, with_secret=True), timezone, cursors, phase)


@dataclass(frozen=True, slots=True)
class SyncFinished:
    status: str | None  # the connection's status now (None: it is gone)
    flagged: list[str]  # bookings newly flagged as conflicting (their events are in the outbox)


def finish_sync(store: Store, connection_id: str, end: SyncEnd, schedule: SyncSchedule,
                now: datetime | None = None) -> SyncFinished:
    """Record the sync's outcome, schedule its next one and release its lease; flag conflicts if asked."""
    moment = now_or(now)

    def work(conn: Connection) -> SyncFinished:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None:
            return SyncFinished(None, [])
        values: dict[str, Any] = {**CLEARED, "sync_lock_until": None}
        if end.reconciled:
            values["last_reconciled_at"] = moment
        status = row["status"]
        if end.status is not None and row["status"] != ConnectionStatus.DISCONNECTED:
            changed, event = status_change(row, end.status, end.error, moment)
            values.update(changed)
            status = str(end.status)
            if event is not None:
                outbox_rows.add_events(conn, [event], moment)
        values.update(next_due(row, schedule, moment, status=status, failed=end.failed, resume_from=end.resume_from,
                               retry_at=end.retry_at))
        connection_rows.update_connection(conn, connection_id, **values)
        return SyncFinished(status, flag_conflicts_in(conn, row["expert_id"], moment) if end.flag else [])

    finished = store.transact(work)
    log_conflicts(finished.flagged)
    if end.status is not None:
        log.info("calendar connection status", extra={"connection_id": connection_id, "status": finished.status})
    return finished
