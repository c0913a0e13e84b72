"""A sync's progress as the worker goes (docs/sync.md#sync-progress): stored for the API, logged for the operator.

Every step is stored on the connection (a few per calendar). The log gets a line when a sync has
run for ``CALBOOK_WORKER_SYNC_PROGRESS_LOG_SECONDS`` (10 s) since the last one, so a long first
sync reports as it goes while the usual few-second sync logs only its ``calendar sync done``.
"""

from __future__ import annotations

import logging
import time

from booking_engine.services import sync_progress
from booking_engine.store.db import Store
from booking_engine.sync_progress import SyncPhase

log = logging.getLogger(__name__)


class ProgressTracker:
    def __init__(self, store: Store, connection_id: str, provider: str, log_every_seconds: float) -> None:
        self.store = store
        self.connection_id = connection_id
        self.provider = provider
        self.every = log_every_seconds
        self.started = self.last_log = time.monotonic()
        sync_progress.begin(store, connection_id)

    def step(self, phase: SyncPhase, calendars_done: int, calendars_total: int, items: int) -> None:
        sync_progress.report(self.store, self.connection_id, phase, calendars_done, calendars_total, items)
        now = time.monotonic()
        if now - self.last_log >= self.every:
            self.last_log = now
            log.info("calendar sync progress", extra={
                "connection_id": self.connection_id, "provider": self.provider, "phase": str(phase),
                "calendars": f"{calendars_done}/{calendars_total}", "items": items,
                "seconds": round(now - self.started, 1)})

    def end(self) -> float:
        """Clear the progress; the sync's duration in seconds."""
        sync_progress.end(self.store, self.connection_id)
        return time.monotonic() - self.started
