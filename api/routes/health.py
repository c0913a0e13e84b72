"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work: database and broker).

Readiness answers 503 ``service_unavailable`` naming the failed dependency, never its URL
(which may hold a password). Both are unauthenticated, for load balancers and probes.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from kombu import Connection
from sqlalchemy import text
from starlette.responses import Response

from api.deps import SettingsDep, StoreDep
from api.openapi import problem_responses
from api.problems import problem
from api.schemas.health import Health, Readiness

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
def readyz(store: StoreDep, settings: SettingsDep) -> dict[str, object] | Response:
    failed: list[str] = []
    try:
        with store.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness: database unreachable", exc_info=True)
        failed.append("database")
    try:
        with Connection(settings.resolved_broker_url(), connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # noqa: BLE001
        log.warning("readiness: broker unreachable", exc_info=True)
        failed.append("broker")
    if failed:
        return problem(503, detail=f"not ready: {', '.join(failed)} unreachable", instance="/readyz",
                       headers={"Retry-After": "5"})
    return {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
