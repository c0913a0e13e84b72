"""A sync's progress as the worker goes (docs/sync.md#sync-progress): stored for the API, logged for the operator.

A reader sees a step only if it lasts, so a step is stored only when it is news
(docs/scaling.md#database-work-per-sync): the sync's start stores its first step and each
calendar's save stores the step after it, in their own transactions; the tracker stores
``fetching`` a calendar other than the one already shown, and ``saving`` a calendar whose pull
brought ``SAVING_SHOWN`` items or more (a smaller save is over in milliseconds). An incremental
sync of one calendar thus stores nothing of its own.

The log gets a line when a sync has run for ``CALBOOK_WORKER_SYNC_PROGRESS_LOG_SECONDS`` (10 s)
since the last one, so a long first sync reports as it goes while the usual few-second sync logs
only its ``calendar sync done``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from booking_engine.clock import utcnow
from booking_engine.services import sync_progress
from booking_engine.store.db import Store
from booking_engine.sync_progress import SyncPhase, progress_columns

log = logging.getLogger(__name__)

SAVING_SHOWN = 500
"""Busy items from which a calendar's save is stored as its own ``saving`` step."""

Step = tuple[SyncPhase, int, int | None, int]


class ProgressTracker:
    def __init__(self, store: Store, connection_id: str, provider: str, log_every_seconds: float,
                 stored: Step) -> None:
        self.store = store
        self.connection_id = connection_id
        self.provider = provider
        self.every = log_every_seconds
        self.stored = stored  # what the connection row shows now
        self.started = self.last_log = time.monotonic()

    def step(self, phase: SyncPhase, calendars_done: int, calendars_total: int, items: int,
             pulled: int = 0) -> None:
        """A step: logged now and then, stored if it is news (``saving``: if ``pulled`` is large)."""
        step: Step = (phase, calendars_done, calendars_total, items)
        newsworthy = phase != SyncPhase.SAVING or pulled >= SAVING_SHOWN
        if newsworthy and step != self.stored:
            sync_progress.report(self.store, self.connection_id, phase, calendars_done, calendars_total, items)
            self.stored = step
        now = time.monotonic()
        if now - self.last_log >= self.every:
            self.last_log = now
            log.info("calendar sync progress", extra={
                "connection_id": self.connection_id, "provider": self.provider, "phase": str(phase),
                "calendars": f"{calendars_done}/{calendars_total}", "items": items,
                "seconds": round(now - self.started, 1)})

    def after_calendar(self, calendars_done: int, calendars_total: int, items: int) -> dict[str, Any]:
        """The step after a calendar is saved (``fetching`` the next), stored with the save itself."""
        self.stored = (SyncPhase.FETCHING, calendars_done, calendars_total, items)
        return progress_columns(SyncPhase.FETCHING, calendars_done, calendars_total, items, utcnow())

    def seconds(self) -> float:
        return time.monotonic() - self.started
