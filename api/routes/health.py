"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work: database, broker, a worker).

Both are ``async`` and never wait behind request threads (docs/operations.md#health): liveness
does no I/O at all, and readiness runs its blocking checks on a small executor of its own,
each bounded by a deadline, so a thread pool saturated by slow requests (calendar servers
that never answer, say) cannot make the probes time out. A check that misses its deadline
counts as failed.

Readiness answers 503 ``service_unavailable`` naming the failed dependency, never its URL
(which may hold a password): ``database``, ``broker``, or ``worker`` when no worker's
heartbeat is fresher than ``CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS`` (the API is up, but
nothing would send its e-mails, webhooks or calendar writes). Both are unauthenticated, for
load balancers and probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi import APIRouter
from kombu import Connection
from sqlalchemy import text
from starlette.responses import Response

from api.deps import SettingsDep, StoreDep
from api.openapi import problem_responses
from api.problems import problem
from api.schemas.health import Health, Readiness
from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from config.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

CHECK_DEADLINE_SECONDS = 3.0
# Readiness's own threads: request threads can all be busy, these are not theirs to take.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="calbook-readyz")


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database(store: Store, _: Settings) -> bool:
    with store.read() as conn:
        conn.execute(text("SELECT 1"))
    return True


def _broker(_: Store, settings: Settings) -> bool:
    with Connection(settings.resolved_broker_url(), connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)
    return True


def _worker(store: Store, settings: Settings) -> bool:
    max_age = timedelta(seconds=settings.worker_heartbeat_max_age_seconds)
    return bool(heartbeats.recent_workers(store, max_age))


CHECKS: dict[str, Callable[[Store, Settings], bool]] = {"database": _database, "broker": _broker, "worker": _worker}


async def _passes(name: str, check: Callable[[Store, Settings], bool], store: Store, settings: Settings) -> bool:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_checks, check, store, settings), CHECK_DEADLINE_SECONDS)
    except Exception:  # noqa: BLE001 - any failure, or the deadline, means "not ready"
        log.warning("readiness check failed", extra={"check": name}, exc_info=True)
        return False


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(store: StoreDep, settings: SettingsDep) -> dict[str, object] | Response:
    results = await asyncio.gather(*(_passes(name, check, store, settings) for name, check in CHECKS.items()))
    failed = [name for name, ok in zip(CHECKS, results, strict=True) if not ok]
    if failed:
        nothing = [n for n in failed if n != "worker"]
        reasons = ([f"{', '.join(nothing)} unreachable"] if nothing else []) + (
            ["no worker seen recently"] if "worker" in failed else [])
        return problem(503, detail=f"not ready: {'; '.join(reasons)}", instance="/readyz",
                       headers={"Retry-After": "5"})
    return {"status": "ok", "checks": {name: "ok" for name in CHECKS}}
