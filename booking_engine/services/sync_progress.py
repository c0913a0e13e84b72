"""Recording a running sync's progress on its connection (booking_engine.sync_progress).

Each step is one short ``UPDATE`` of the connection row: a few per calendar, nothing per event.
"""

from __future__ import annotations

from datetime import datetime

from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.sync_progress import SyncPhase

_CLEARED = {"sync_phase": None, "sync_calendars_done": None, "sync_calendars_total": None, "sync_items": None,
            "sync_started_at": None, "sync_progress_at": None}


def begin(store: Store, connection_id: str, now: datetime | None = None) -> None:
    moment = now_or(now)
    _write(store, connection_id, {**_CLEARED, "sync_phase": str(SyncPhase.LISTING), "sync_calendars_done": 0,
                                  "sync_items": 0, "sync_started_at": moment, "sync_progress_at": moment})


def report(store: Store, connection_id: str, phase: SyncPhase, calendars_done: int, calendars_total: int,
           items: int, now: datetime | None = None) -> None:
    _write(store, connection_id, {"sync_phase": str(phase), "sync_calendars_done": calendars_done,
                                  "sync_calendars_total": calendars_total, "sync_items": items,
                                  "sync_progress_at": now_or(now)})


def end(store: Store, connection_id: str) -> None:
    _write(store, connection_id, dict(_CLEARED))


def _write(store: Store, connection_id: str, values: dict[str, object]) -> None:
    with store.write() as conn:
        connection_rows.update_connection(conn, connection_id, **values)
