"""The API's composition root: what ``create_app`` puts on ``app.state``, and the dependencies that hand it to routes.

``build_adapters`` picks the adapters once per app: the task sender (``config.task_sender``) and,
unless a test hands in its own, the calendar accounts port (``connectors.accounts.ProviderAccounts``)
with the request's settings, from which the booking-time free/busy check is built. A test hands
in its own (a recording task queue, say) through ``create_app(..., tasks=...)``. Routes receive
them as ``Annotated`` dependencies and pass them to one service function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from api.answer_cache import AnswerCache
from api.versions import VersionReads
from booking_engine.ports import CalendarAccounts, TaskQueue
from booking_engine.services import connections
from booking_engine.services.bookings import ExternalCheck
from booking_engine.store.db import Store
from config.settings import Settings
from config.task_sender import CeleryTaskQueue
from connectors.accounts import ProviderAccounts


@dataclass(frozen=True, slots=True)
class Adapters:
    """The ports the API's use cases are handed; ``accounts=None``: the real providers, with the
    settings of the request (routes read settings per request, so a test may switch them)."""

    tasks: TaskQueue
    accounts: CalendarAccounts | None = None


def build_adapters(
    settings: Settings, *, accounts: CalendarAccounts | None = None, tasks: TaskQueue | None = None,
) -> Adapters:
    return Adapters(tasks=tasks or CeleryTaskQueue(settings.resolved_broker_url()), accounts=accounts)


# ``async def`` on purpose: FastAPI runs sync dependencies in the thread pool, a hop that costs
# more than these lookups.
async def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_accounts(request: Request) -> CalendarAccounts:
    chosen: CalendarAccounts | None = request.app.state.adapters.accounts
    return chosen if chosen is not None else ProviderAccounts(request.app.state.settings)


async def get_answers(request: Request) -> AnswerCache:
    return request.app.state.answers  # type: ignore[no-any-return]


async def get_versions(request: Request) -> VersionReads:
    return request.app.state.versions  # type: ignore[no-any-return]


async def get_tasks(request: Request) -> TaskQueue:
    return request.app.state.adapters.tasks  # type: ignore[no-any-return]


async def get_external_check(request: Request) -> ExternalCheck | None:
    """The booking-time free/busy re-check (``CALBOOK_GOOGLE_FREEBUSY_CHECK``,
    ``CALBOOK_MICROSOFT_FREEBUSY_CHECK``), or None when both are off."""
    settings: Settings = request.app.state.settings
    if not (settings.google_freebusy_check or settings.microsoft_freebusy_check):
        return None
    store: Store = request.app.state.store
    accounts = await get_accounts(request)

    def check(expert_id: str, start: datetime, end: datetime) -> bool:
        return connections.busy_in_provider_calendars(store, accounts, expert_id, start, end)

    return check


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AccountsDep = Annotated[CalendarAccounts, Depends(get_accounts)]
AnswersDep = Annotated[AnswerCache, Depends(get_answers)]
VersionsDep = Annotated[VersionReads, Depends(get_versions)]
TasksDep = Annotated[TaskQueue, Depends(get_tasks)]
ExternalCheckDep = Annotated[ExternalCheck | None, Depends(get_external_check)]
