"""FastAPI dependencies for what ``create_app`` put on ``app.state``: the store and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from booking_engine.store.db import Store
from config.settings import Settings


# ``async def`` on purpose: FastAPI runs sync dependencies in the thread pool, a hop that costs
# more than these lookups.
async def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
