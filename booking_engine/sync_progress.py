"""Where a running calendar sync is (docs/sync.md#sync-progress): its phase and how far it got.

A first sync of a large calendar takes a while; the expert (``GET /v1/calendar-connections``)
and the operator (the worker's log) see it move: ``listing`` the account's calendars, then for
each calendar ``fetching`` it (the provider's requests and the expansion of its events) and
``saving`` its busy items. Progress is counted per calendar: ``items`` is the busy items saved
so far, ``calendars_done`` of ``calendars_total`` are finished. It is only true while the sync
holds its lease; a sync whose worker died leaves it behind, and it is then not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from booking_engine.timeutil import iso_z


class SyncPhase(StrEnum):
    LISTING = "listing"
    FETCHING = "fetching"
    SAVING = "saving"


@dataclass(frozen=True, slots=True)
class SyncProgress:
    phase: SyncPhase
    calendars_done: int
    calendars_total: int | None
    items: int
    started_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": str(self.phase),
            "calendarsDone": self.calendars_done,
            "calendarsTotal": self.calendars_total,
            "itemsImported": self.items,
            "startedAt": iso_z(self.started_at),
            "updatedAt": iso_z(self.updated_at),
        }


CLEARED: dict[str, Any] = {
    "sync_phase": None, "sync_calendars_done": None, "sync_calendars_total": None, "sync_items": None,
    "sync_started_at": None, "sync_progress_at": None}
"""The progress columns of a connection no sync is running on."""


def progress_columns(phase: SyncPhase, calendars_done: int, calendars_total: int | None, items: int,
                     moment: datetime) -> dict[str, Any]:
    """The progress columns of a step, as stored on the connection row."""
    return {"sync_phase": str(phase), "sync_calendars_done": calendars_done, "sync_calendars_total": calendars_total,
            "sync_items": items, "sync_progress_at": moment}


def progress_of(row: Any, now: datetime) -> SyncProgress | None:
    """The progress stored on a connection row, if a sync is running (its lease holds)."""
    phase, lease = row["sync_phase"], row["sync_lock_until"]
    if phase is None or lease is None or lease <= now or row["sync_started_at"] is None:
        return None
    return SyncProgress(
        phase=SyncPhase(phase),
        calendars_done=row["sync_calendars_done"] or 0,
        calendars_total=row["sync_calendars_total"],
        items=row["sync_items"] or 0,
        started_at=row["sync_started_at"],
        updated_at=row["sync_progress_at"] or row["sync_started_at"],
    )
