"""Recording a running sync's progress on its connection (booking_engine.sync_progress).

A step is one short ``UPDATE`` of the connection row. The sync's start stores its first step
and each calendar's save the step after it (``services.sync_runs``, ``calendar_sync.apply_pull``);
this is for the steps in between.
"""

from __future__ import annotations

from datetime import datetime

from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.sync_progress import SyncPhase, progress_columns


def report(store: Store, connection_id: str, phase: SyncPhase, calendars_done: int, calendars_total: int,
           items: int, now: datetime | None = None) -> None:
    with store.write() as conn:
        connection_rows.update_connection(
            conn, connection_id, **progress_columns(phase, calendars_done, calendars_total, items, now_or(now)))
