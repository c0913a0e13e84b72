"""``/v1/experts``: the directory of experts who have published availability, and one public profile.

Only experts with saved settings are listed (docs/domain.md#experts: an expert nobody can book
is not offered); only public fields are shown (name, headline, bio, rate, timezone, durations).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import StoreDep
from api.openapi import problem_responses
from api.routes.params import Cursor, ExpertId, Limit
from api.schemas.profile import ExpertPage, ExpertProfile
from booking_engine.services import users

router = APIRouter(prefix="/v1/experts", tags=["experts"], responses=problem_responses(401, 422))


@router.get("", response_model=ExpertPage)
def list_experts(user: CurrentUser, store: StoreDep, cursor: Cursor = None, limit: Limit = 50) -> dict[str, Any]:
    items, next_cursor = users.list_experts(store, cursor, limit)
    return {"items": items, "nextCursor": next_cursor}


@router.get("/{expert_id}", response_model=ExpertProfile, responses=problem_responses(404))
def get_expert(expert_id: ExpertId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return users.get_expert(store, expert_id)
