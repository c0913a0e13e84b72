"""Microsoft 365 / Outlook: start the OAuth flow, its callback, and the change-notification receiver.

* ``POST /v1/calendar-connections/microsoft/authorize`` (the expert) answers the consent URL; the
  state is bound server-side to the expert with MSAL's flow (PKCE verifier, nonce), encrypted,
  ten minutes, single use.
* ``GET /v1/oauth/microsoft/callback`` completes the connection (``connections.connect_microsoft``).
* ``POST /v1/webhooks/microsoft`` is both the ``notificationUrl`` and the
  ``lifecycleNotificationUrl`` of every subscription. With ``validationToken`` it is Graph's
  handshake: the token echoed as ``text/plain``, 200. Otherwise it answers 202 at once, for
  unknown subscriptions and a wrong ``clientState`` too (nothing is changed for those, and
  nobody learns which subscription ids exist).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import CurrentUser
from api.deps import AccountsDep, StoreDep, TasksDep
from api.openapi import problem_responses
from api.schemas.google import AuthorizeRequest, AuthorizeResponse, GoogleConnection
from booking_engine.services import connections, microsoft_subscriptions

router = APIRouter(tags=["calendar connections"])
log = logging.getLogger(__name__)

MAX_PARAM = 4096
MAX_NOTIFICATION_BYTES = 1_000_000


@router.post(
    "/v1/calendar-connections/microsoft/authorize",
    response_model=AuthorizeResponse,
    responses=problem_responses(401, 404, 422, 503),
)
def authorize(
    user: CurrentUser, store: StoreDep, accounts: AccountsDep, body: AuthorizeRequest | None = None
) -> Any:
    """Start connecting Microsoft 365 / Outlook. Without a configured Entra app: 404 ``not_found``."""
    url = connections.start_microsoft(store, accounts, user.user_id, body.login_hint if body else None)
    return {"authorizationUrl": url}


@router.get(
    "/v1/oauth/microsoft/callback",
    response_model=GoogleConnection,
    responses=problem_responses(400, 502, 503),
)
def callback(
    store: StoreDep,
    accounts: AccountsDep,
    tasks: TasksDep,
    code: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    state: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    error: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
) -> Any:
    connection = connections.connect_microsoft(store, accounts, tasks, code=code, state=state, error=error)
    return JSONResponse(connection.as_dict(), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{connection.id}"})


@router.post("/v1/webhooks/microsoft", status_code=202, response_class=Response)
async def microsoft_notification(
    request: Request, store: StoreDep, tasks: TasksDep,
    validation_token: Annotated[str | None, Query(alias="validationToken", max_length=MAX_PARAM)] = None,
) -> Response:
    """Graph's validation handshake (200, the token as text/plain) or notifications (always 202)."""
    if validation_token is not None:
        return PlainTextResponse(validation_token, status_code=200)
    raw = await request.body()
    items: list[Any] = []
    if len(raw) <= MAX_NOTIFICATION_BYTES:
        try:
            parsed = json.loads(raw or b"{}")
            value = parsed.get("value") if isinstance(parsed, dict) else None
            items = [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []
        except ValueError:
            log.info("microsoft notification body unreadable, ignored")
    if items:
        from starlette.concurrency import run_in_threadpool

        done = await run_in_threadpool(microsoft_subscriptions.notifications_received, store, tasks, items)
        log.info("microsoft notifications", extra={"items": len(items), "done": ",".join(done)[:200]})
    return Response(status_code=202)
