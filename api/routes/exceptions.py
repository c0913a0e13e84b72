"""``/v1/experts/{expertId}/exceptions``: per-date departures from the weekly schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.auth import CurrentUser, require_self
from api.deps import StoreDep
from api.openapi import problem_responses
from api.routes.params import ExpertId, PathDay
from api.schemas.availability import AvailabilityException, ExceptionIn, ExceptionList
from api.schemas.common import Day
from booking_engine.clock import utcnow
from booking_engine.services import availability

router = APIRouter(prefix="/v1/experts/{expert_id}/exceptions", tags=["availability"],
                   responses=problem_responses(401, 422))
DEFAULT_RANGE = timedelta(days=365)


@router.get("", response_model=ExceptionList, responses=problem_responses(404))
def list_exceptions(
    expert_id: ExpertId,
    user: CurrentUser,
    store: StoreDep,
    first: Annotated[Day | None, Query(alias="from", description="default: today (UTC)")] = None,
    last: Annotated[Day | None, Query(alias="to", description="default: a year after 'from'")] = None,
) -> dict[str, Any]:
    first = first or utcnow().date()
    last = last or first + DEFAULT_RANGE
    return {"items": [e.as_dict() for e in availability.list_exceptions(
        store, expert_id, first, last, asked_by=user.user_id)]}


@router.put("/{day}", response_model=AvailabilityException, responses=problem_responses(403))
def put_exception(
    expert_id: ExpertId, day: PathDay, body: ExceptionIn, user: CurrentUser, store: StoreDep
) -> dict[str, Any]:
    require_self(user, expert_id, "change their exceptions")
    raw = body.model_dump(by_alias=True, exclude_none=True)
    return availability.set_exception(store, user.user_id, expert_id, day, raw).as_dict()


@router.delete("/{day}", status_code=204, response_class=Response, responses=problem_responses(403, 404))
def delete_exception(expert_id: ExpertId, day: PathDay, user: CurrentUser, store: StoreDep) -> Response:
    require_self(user, expert_id, "change their exceptions")
    availability.delete_exception(store, user.user_id, expert_id, day)
    return Response(status_code=204)
