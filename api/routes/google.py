"""Google Calendar: start the OAuth flow, its callback, and the push-notification receiver.

* ``POST /v1/calendar-connections/google/authorize`` (the expert) answers the consent URL.
  The ``state`` in it is remembered server-side with the expert's id and the PKCE verifier
  (encrypted), for ten minutes, single use (``booking_engine.services.oauth_states``).
* ``GET /v1/oauth/google/callback`` is where Google sends the browser back. It carries no
  calbook token: the state row says whose connection this is. Unknown, expired or reused
  states are a 400 problem. On success the answer is the new connection (no secret in it);
  its first sync and watch are queued.
* ``POST /v1/webhooks/google`` receives Google's notifications. It always answers 200 at
  once, also for unknown channels and bad tokens, so that nobody can probe which channel
  ids exist; what it did is logged (never the token).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentUser
from api.deps import SettingsDep, StoreDep
from api.openapi import problem_responses
from api.problems import problem
from api.schemas.google import AuthorizeRequest, AuthorizeResponse, GoogleConnection
from booking_engine.services import oauth_states
from connectors.base import ConnectorError, TransientError
from connectors.google.errors import GoogleOAuthError, MissingScopesError
from connectors.google.oauth import authorization_request
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json
from worker.calendar import google as google_worker

log = logging.getLogger(__name__)

router = APIRouter(tags=["calendar connections"])

PROVIDER = "google"
MAX_PARAM = 4096


def task_queue(request: Request) -> google_worker.TaskQueue:
    """The app's broker by default; tests may put a recording queue on ``app.state.google_tasks``."""
    queue = getattr(request.app.state, "google_tasks", None)
    if queue is None:
        queue = google_worker.CeleryTaskQueue(request.app.state.settings.resolved_broker_url())
    return queue  # type: ignore[no-any-return]


@router.post(
    "/v1/calendar-connections/google/authorize",
    response_model=AuthorizeResponse,
    responses=problem_responses(401, 404, 422, 503),
)
def authorize(
    user: CurrentUser, store: StoreDep, settings: SettingsDep, body: AuthorizeRequest | None = None
) -> Any:
    """Start connecting Google. On a server without a Google OAuth client the feature does not
    exist: 404 ``not_found`` (a configuration fact, not a server fault)."""
    if not settings.google_client_id or not settings.google_client_secret:
        return problem(404, "not_found", "Google Calendar is not enabled on this server",
                       "set CALBOOK_GOOGLE_CLIENT_ID and CALBOOK_GOOGLE_CLIENT_SECRET to enable it",
                       "/v1/calendar-connections/google/authorize")
    try:
        request = authorization_request(
            google_worker.callback_uri(settings), settings=settings, login_hint=body.login_hint if body else None
        )
    except GoogleOAuthError as exc:
        return problem(503, detail=str(exc), instance="/v1/calendar-connections/google/authorize")
    secret = encrypt_json({"code_verifier": request.code_verifier}, settings.resolved_encryption_key())
    oauth_states.create_state(store, user.user_id, PROVIDER, request.state, secret)
    return {"authorizationUrl": request.url}


@router.get(
    "/v1/oauth/google/callback",
    response_model=GoogleConnection,
    responses=problem_responses(400, 502, 503),
)
def callback(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    state: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    error: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
) -> Any:
    path = request.url.path
    # The state is spent whatever happens next: a code is single use, and so is its state.
    pending = oauth_states.consume_state(store, PROVIDER, state)
    if error:
        log.info("google authorization declined", extra={"expert_id": pending.expert_id, "error": error[:100]})
        return problem(400, "validation_error", "Google authorization was not granted",
                       f"Google answered {error[:100]!r}; start connecting again", path)
    if not code:
        return problem(400, "validation_error", None, "the code parameter is missing", path,
                       [{"field": "code", "message": "required", "type": "missing"}])
    try:
        verifier = str(decrypt_json(pending.secret, settings.resolved_encryption_key())["code_verifier"])
    except (CredentialsUnreadable, KeyError):
        return problem(400, "validation_error", None, "the authorization can no longer be completed", path)
    try:
        connection = google_worker.complete_connection(
            store, settings, pending.expert_id, code=code, state=state or "", code_verifier=verifier,
            queue=task_queue(request),
        )
    except MissingScopesError as exc:
        return problem(400, "validation_error", "Google did not grant the required permissions", str(exc), path,
                       [{"field": "scope", "message": str(exc), "type": "missing_scopes"}])
    except GoogleOAuthError as exc:
        return problem(400, "validation_error", "Google authorization failed", str(exc), path)
    except TransientError as exc:
        log.warning("google unreachable during connect", extra={"expert_id": pending.expert_id})
        return problem(503, detail=f"{exc}; start connecting again shortly", instance=path,
                       headers={"Retry-After": "5"})
    except ConnectorError as exc:
        return problem(502, "bad_gateway", "Google refused the request", str(exc), path)
    return JSONResponse(connection.as_dict(), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{connection.id}"})


@router.post("/v1/webhooks/google", status_code=200, response_class=Response)
def google_notification(request: Request, store: StoreDep) -> Response:
    """Google's push notification: headers only, the body is empty. Always 200."""
    google_worker.handle_notification(store, request.headers, task_queue(request))
    return Response(status_code=200)
