"""``GET /metrics``: Prometheus text format (docs/operations.md#metrics).

Unauthenticated like the health probes, unless ``CALBOOK_METRICS_TOKEN`` is set: then a scraper
sends it as a bearer token (Prometheus' ``authorization`` setting), compared in constant time.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import SettingsDep, StoreDep
from api.metrics import exposition
from api.problems import problem, unauthenticated_headers

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    if settings.metrics_token:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return problem(401, detail="send the metrics token as a bearer token", instance="/metrics",
                           headers=unauthenticated_headers())
    body, content_type = exposition(store, settings.worker_heartbeat_max_age_seconds, request.headers.get("accept"))
    return Response(body, media_type=content_type)
