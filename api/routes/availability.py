"""``/v1/experts/{expertId}/availability``: read by anyone signed in, written by the expert.

The ETag is the settings' version; ``PUT`` needs ``If-Match`` (see ``api.preconditions``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from api.auth import CurrentUser, require_self
from api.conditional import none_match, not_modified
from api.deps import StoreDep
from api.openapi import problem_responses
from api.preconditions import etag, expected_version
from api.routes.params import ExpertId
from api.schemas.availability import AvailabilitySettings, AvailabilitySettingsIn
from booking_engine.services import availability

router = APIRouter(prefix="/v1/experts/{expert_id}/availability", tags=["availability"],
                   responses=problem_responses(401, 422))
_ETAG_HEADER = {"ETag": {"description": "The settings' version, quoted", "schema": {"type": "string"}}}


@router.get(
    "", response_model=AvailabilitySettings, responses={200: {"headers": _ETAG_HEADER}, **problem_responses(404)}
)
def get_availability(
    expert_id: ExpertId, user: CurrentUser, store: StoreDep, response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """An expert nobody knows (no profile, no settings) is 404; one who never published reads
    the closed defaults at version 0, and so does the expert about themselves.

    ``If-None-Match`` with the current version is 304 (api/conditional.py), except at version
    0: the defaults follow the profile's timezone, which the settings version does not count.
    """
    settings = availability.get_availability(store, expert_id, asked_by=user.user_id)
    tag = etag(settings.version)
    if settings.version > 0 and none_match(if_none_match, tag):
        return not_modified(tag)
    response.headers["ETag"] = tag
    return settings.as_dict()


@router.put(
    "",
    response_model=AvailabilitySettings,
    responses={200: {"headers": _ETAG_HEADER}, **problem_responses(403, 412, 428)},
)
def put_availability(
    expert_id: ExpertId,
    body: AvailabilitySettingsIn,
    user: CurrentUser,
    store: StoreDep,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=64)] = None,
) -> dict[str, Any]:
    require_self(user, expert_id, "change their availability")
    version = expected_version(if_match)
    fields = body.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    settings = availability.set_availability(store, user.user_id, expert_id, fields, version)
    response.headers["ETag"] = etag(settings.version)
    return settings.as_dict()
