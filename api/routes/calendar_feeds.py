"""The subscribable calendar feed (docs/api.md#calendar-feed).

``POST /v1/me/calendar-feed`` (signed in) answers the feed's secret URL, a new one each time;
``DELETE`` ends it. ``GET /v1/calendar-feeds/{token}.ics`` needs no other authentication, as a
calendar app subscribing to it cannot send one: the token is the credential. It answers with a
strong ``ETag`` of the body and ``304`` to a matching ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.auth import CurrentUser
from api.deps import SettingsDep, StoreDep
from api.ics import feed_to_ics
from api.openapi import problem_responses
from api.schemas.common import ResponseModel
from booking_engine.services import calendar_feeds

me_router = APIRouter(prefix="/v1/me/calendar-feed", tags=["me"], responses=problem_responses(401, 422))
feed_router = APIRouter(prefix="/v1/calendar-feeds", tags=["calendar feed"])


class CalendarFeed(ResponseModel):
    url: str


class IcsResponse(Response):
    media_type = "text/calendar"


@me_router.post("", response_model=CalendarFeed)
def rotate_feed(user: CurrentUser, store: StoreDep, settings: SettingsDep) -> dict[str, str]:
    """A new secret URL for the caller's feed; the previous URL answers 404 from now on."""
    token = calendar_feeds.rotate_feed(store, user.user_id)
    return {"url": f"{settings.public_base_url.rstrip('/')}/v1/calendar-feeds/{token}.ics"}


@me_router.delete("", status_code=204, responses=problem_responses(404))
def revoke_feed(user: CurrentUser, store: StoreDep) -> Response:
    calendar_feeds.revoke_feed(store, user.user_id)
    return Response(status_code=204)


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


@feed_router.get(
    "/{token}.ics",
    response_class=IcsResponse,
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}, 304: {"description": "unchanged"},
               **problem_responses(404)},
)
def get_feed(
    token: str, store: StoreDep,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=2000)] = None,
) -> Response:
    _, found = calendar_feeds.feed_bookings(store, token)
    body = feed_to_ics(found)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return IcsResponse(body, headers=headers)
