"""``/v1/booking-requests``: a user proposes slots, the expert accepts one or rejects.

The rules: docs/lifecycle.md#booking-requests.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import CurrentUser
from api.deps import ExternalCheckDep, StoreDep
from api.openapi import problem_responses
from api.routes.params import Cursor, Limit, ResourceId, Role, Statuses, split_statuses
from api.schemas.booking_requests import BookingRequest, BookingRequestCreate, BookingRequestPage, RequestResponse
from booking_engine.services import booking_requests

router = APIRouter(prefix="/v1/booking-requests", tags=["booking requests"], responses=problem_responses(401, 422))
_ACTION = problem_responses(403, 404, 409)


@router.post("", status_code=201, response_model=BookingRequest, responses=problem_responses(404))
def create_request(body: BookingRequestCreate, user: CurrentUser, store: StoreDep) -> JSONResponse:
    request = booking_requests.create_request(
        store, user.user_id, body.expert_id, body.requested_duration_minutes, body.type,
        [slot.start_time for slot in body.proposed_slots], body.message,
    )
    return JSONResponse(
        request.as_dict(), status_code=201, headers={"Location": f"/v1/booking-requests/{request.id}"}
    )


@router.get("", response_model=BookingRequestPage)
def list_requests(
    user: CurrentUser,
    store: StoreDep,
    role: Role = "user",
    status: Statuses = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    items, next_cursor = booking_requests.list_requests(
        store, user.user_id, role, split_statuses(status), cursor or None, limit
    )
    return {"items": [r.as_dict() for r in items], "nextCursor": next_cursor}


@router.get("/{request_id}", response_model=BookingRequest, responses=problem_responses(404))
def get_request(request_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return booking_requests.get_request(store, user.user_id, request_id).as_dict()


@router.post("/{request_id}/respond", response_model=BookingRequest, responses=_ACTION)
def respond(
    request_id: ResourceId, body: RequestResponse, user: CurrentUser, store: StoreDep, external_check: ExternalCheckDep
) -> dict[str, Any]:
    return booking_requests.respond_to_request(
        store, user.user_id, request_id, body.accept, body.slot_index, body.message,
        external_check=external_check,
    ).as_dict()


@router.post("/{request_id}/withdraw", response_model=BookingRequest, responses=_ACTION)
def withdraw(request_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return booking_requests.withdraw_request(store, user.user_id, request_id).as_dict()
