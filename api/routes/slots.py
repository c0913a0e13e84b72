"""Read views of an expert's time for anyone signed in: slots, the month view, busy times.

Busy times are times only (docs/domain.md#busy-times): no titles, no booking ids, no counterpart.
An expert nobody knows (no profile, no settings) is 404 on each (docs/domain.md#experts).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.auth import CurrentUser
from api.deps import StoreDep
from api.openapi import problem_responses
from api.routes.params import ExpertId, Timezone
from api.schemas.availability import BusyList, MonthCalendar, SlotList
from api.schemas.common import MAX_YEAR, MIN_YEAR, Day, Instant
from booking_engine.errors import ValidationError
from booking_engine.services import availability
from booking_engine.timeutil import iso_z, zone

router = APIRouter(prefix="/v1/experts/{expert_id}", tags=["availability"],
                   responses=problem_responses(401, 404, 422))
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@router.get("/slots", response_model=SlotList)
def get_slots(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    date: Annotated[Day, Query(description="A local date in `tz`")],
    duration: Annotated[int, Query(description="Minutes: a multiple of 15 within the expert's limits")],
    tz: Timezone = None,
) -> Response:
    """The hottest read of the API: answered as ready JSON bytes.

    ``response_model`` still documents the shape (and schemathesis checks it), but the
    per-request model validation and re-encoding of a few dozen slots is skipped: the
    payload is built here from typed values and cannot drift from ``SlotList``.
    """
    found = availability.get_slots(store, expert_id, date, duration, tz, asked_by=user.user_id)
    viewer = zone(found.viewer_tz)
    payload = {
        "date": date.isoformat(),
        "durationMinutes": duration,
        "timezone": found.viewer_tz,
        "slots": [
            {
                "start": iso_z(s.start),
                "end": iso_z(s.end),
                "localStart": s.start.astimezone(viewer).isoformat(),
                "priceCents": s.price_cents,
                "currency": s.currency,
                "status": s.status,
            }
            for s in found.slots
        ],
    }
    return Response(json.dumps(payload, separators=(",", ":")).encode(), media_type="application/json")


@router.get("/calendar", response_model=MonthCalendar)
def get_calendar(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    tz: Timezone = None,
) -> dict[str, Any]:
    match = _MONTH.match(month)
    assert match is not None  # the pattern above
    year, number = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(f"month must lie between the years {MIN_YEAR} and {MAX_YEAR}", field="month")
    days = availability.get_month(store, expert_id, year, number, tz, asked_by=user.user_id)
    return {"month": month, "days": [{"date": d.isoformat(), "status": s} for d, s in days]}


@router.get("/busy", response_model=BusyList)
def get_busy(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    start: Annotated[Instant, Query(alias="from")],
    end: Annotated[Instant, Query(alias="to")],
) -> dict[str, Any]:
    intervals = availability.get_busy(store, expert_id, start, end, asked_by=user.user_id)
    return {"items": [{"start": iso_z(s), "end": iso_z(e)} for s, e in intervals]}
