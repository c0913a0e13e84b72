"""``/v1/me``: the caller's own profile; there is no way to touch anyone else's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import StoreDep
from api.openapi import problem_responses
from api.schemas.profile import Profile, ProfileUpdate
from booking_engine.services import users

router = APIRouter(prefix="/v1/me", tags=["me"], responses=problem_responses(401, 422))


@router.get("", response_model=Profile)
def get_me(user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return users.get_profile(store, user.user_id)


@router.put("", response_model=Profile)
def put_me(body: ProfileUpdate, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return users.update_profile(
        store, user.user_id, email=body.email, display_name=body.display_name, timezone=body.timezone,
        headline=body.headline, bio=body.bio,
    )
