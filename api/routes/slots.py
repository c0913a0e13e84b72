"""Read views of an expert's time for anyone signed in: slots, the month view, busy times.

Busy times are times only (docs/domain.md#busy-times): no titles, no booking ids, no counterpart.
An expert nobody knows (no profile, no settings) is 404 on each (docs/domain.md#experts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from starlette.concurrency import run_in_threadpool

from api import conditional
from api.answer_cache import AnswerCache
from api.auth import CurrentUser
from api.deps import AnswersDep, StoreDep, VersionsDep
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


async def _answer(answers: AnswerCache, tag: str | None, compute: Callable[[], dict[str, Any]], *,
                  cacheable: bool = True) -> Response:
    """The answer as JSON bytes, from the process's answer cache when its tag is there.

    ``cacheable=False`` for an expert asking about themselves: only they may see the closed
    defaults of an expert nobody else knows yet (docs/domain.md#experts), so their answer is
    never handed to another caller.
    """
    key = tag if cacheable else None
    body = answers.get(key)
    if body is None:

        def computed() -> bytes:  # the reads and the engine: in a worker thread, off the event loop
            encoded = json.dumps(compute(), separators=(",", ":")).encode()
            answers.put(key, encoded)
            return encoded

        body = await run_in_threadpool(computed)
    headers = {} if tag is None else {"ETag": tag}
    return Response(body, media_type="application/json", headers=headers)


@router.get("/slots", response_model=SlotList, responses={200: {"headers": conditional.ETAG_HEADER}, 304: {}})
async def get_slots(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    answers: AnswersDep,
    versions: VersionsDep,
    date: Annotated[Day, Query(description="A local date in `tz`")],
    duration: Annotated[int, Query(description="Minutes: a multiple of 15 within the expert's limits")],
    tz: Timezone = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The hottest read of the API: a 304 (api/conditional.py), ready bytes from the answer
    cache (api/answer_cache.py), or computed.

    ``response_model`` still documents the shape (and schemathesis checks it), but the
    per-request model validation and re-encoding of a few dozen slots is skipped: the
    payload is built here from typed values and cannot drift from ``SlotList``.
    """
    moment = conditional.answer_time()
    version = await versions.version(expert_id)
    tag = None if version is None else conditional.make_etag(version, "slots", expert_id, date, duration, tz, moment)
    if tag is not None and conditional.none_match(if_none_match, tag):
        return conditional.not_modified(tag)

    def compute() -> dict[str, Any]:
        found = availability.get_slots(store, expert_id, date, duration, tz, now=moment, asked_by=user.user_id)
        viewer = zone(found.viewer_tz)
        return {
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

    return await _answer(answers, tag, compute, cacheable=user.user_id != expert_id)


@router.get("/calendar", response_model=MonthCalendar, responses={200: {"headers": conditional.ETAG_HEADER}, 304: {}})
async def get_calendar(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    answers: AnswersDep,
    versions: VersionsDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    tz: Timezone = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    match = _MONTH.match(month)
    assert match is not None  # the pattern above
    year, number = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(f"month must lie between the years {MIN_YEAR} and {MAX_YEAR}", field="month")
    moment = conditional.answer_time()
    version = await versions.version(expert_id)
    tag = None if version is None else conditional.make_etag(version, "calendar", expert_id, month, tz, moment)
    if tag is not None and conditional.none_match(if_none_match, tag):
        return conditional.not_modified(tag)

    def compute() -> dict[str, Any]:
        days = availability.get_month(store, expert_id, year, number, tz, now=moment, asked_by=user.user_id)
        return {"month": month, "days": [{"date": d.isoformat(), "status": s} for d, s in days]}

    return await _answer(answers, tag, compute, cacheable=user.user_id != expert_id)


@router.get("/busy", response_model=BusyList, responses={200: {"headers": conditional.ETAG_HEADER}, 304: {}})
async def get_busy(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    answers: AnswersDep,
    versions: VersionsDep,
    start: Annotated[Instant, Query(alias="from")],
    end: Annotated[Instant, Query(alias="to")],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Busy times do not depend on "now": the tag is the version and the range."""
    version = await versions.version(expert_id)
    tag = None if version is None else conditional.make_etag(
        version, "busy", expert_id, start.isoformat(), end.isoformat())
    if tag is not None and conditional.none_match(if_none_match, tag):
        return conditional.not_modified(tag)

    def compute() -> dict[str, Any]:
        intervals = availability.get_busy(store, expert_id, start, end, asked_by=user.user_id)
        return {"items": [{"start": iso_z(s), "end": iso_z(e)} for s, e in intervals]}

    return await _answer(answers, tag, compute, cacheable=user.user_id != expert_id)
