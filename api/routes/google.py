"""Google Calendar: start the OAuth flow, its callback, and the push-notification receiver.

* ``POST /v1/calendar-connections/google/authorize`` (the expert) answers the consent URL.
  The ``state`` in it is remembered server-side with the expert's id and the PKCE verifier
  (encrypted), for ten minutes, single use (``booking_engine.services.oauth_states``).
* ``GET /v1/oauth/google/callback`` is where Google sends the browser back. It carries no
  calbook token: the state row says whose connection this is. Unknown, expired or reused
  states, a declined consent, missing permissions or a refused code are 400 problems. On
  success the answer is the new connection (no secret in it); its first sync and watch are
  queued (``connections.connect_google``). A flow started from the schedule page (the pages set
  the ``calbook_oauth_return`` cookie) is redirected back to ``/schedule`` with the outcome instead.
* ``POST /v1/webhooks/google`` receives Google's notifications. It always answers 200 at
  once, also for unknown channels and bad tokens, so that nobody can probe which channel
  ids exist; what it did is logged (never the token).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from api.auth import CurrentUser
from api.deps import AccountsDep, StoreDep, TasksDep
from api.openapi import problem_responses
from api.schemas.google import AuthorizeRequest, AuthorizeResponse, GoogleConnection
from booking_engine.errors import BookingError
from booking_engine.services import connections, google_channels
from connectors.google.webhook import decide_action, parse_notification

router = APIRouter(tags=["calendar connections"])

MAX_PARAM = 4096
OAUTH_RETURN_COOKIE = "calbook_oauth_return"  # set by the schedule page (api/web/pages.py) when it starts the flow


@router.post(
    "/v1/calendar-connections/google/authorize",
    response_model=AuthorizeResponse,
    responses=problem_responses(401, 404, 422, 503),
)
def authorize(
    user: CurrentUser, store: StoreDep, accounts: AccountsDep, body: AuthorizeRequest | None = None
) -> Any:
    """Start connecting Google. On a server without a Google OAuth client the feature does not
    exist: 404 ``not_found`` (a configuration fact, not a server fault)."""
    url = connections.start_google(store, accounts, user.user_id, body.login_hint if body else None)
    return {"authorizationUrl": url}


@router.get(
    "/v1/oauth/google/callback",
    response_model=GoogleConnection,
    responses=problem_responses(400, 502, 503),
)
def callback(
    request: Request,
    store: StoreDep,
    accounts: AccountsDep,
    tasks: TasksDep,
    code: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    state: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
    error: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
) -> Any:
    """A flow started from the schedule page (its cookie says so) goes back there with the outcome in words."""
    if request.cookies.get(OAUTH_RETURN_COOKIE) == "schedule":
        try:
            connections.connect_google(store, accounts, tasks, code=code, state=state, error=error)
            target = "/schedule?" + urlencode({"done": "google"})
        except BookingError as exc:
            target = "/schedule?" + urlencode({"google_error": exc.detail})
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(OAUTH_RETURN_COOKIE, path="/")
        return response
    connection = connections.connect_google(store, accounts, tasks, code=code, state=state, error=error)
    return JSONResponse(connection.as_dict(), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{connection.id}"})


@router.post("/v1/webhooks/google", status_code=200, response_class=Response)
def google_notification(request: Request, store: StoreDep, tasks: TasksDep) -> Response:
    """Google's push notification: headers only, the body is empty. Always 200."""
    notice = parse_notification(request.headers)
    if notice is not None:
        google_channels.notification_received(
            store, tasks, notice.channel_id, lambda channel: decide_action(notice, channel.token_hash,
                                                                           channel.resource_id),
        )
    return Response(status_code=200)
