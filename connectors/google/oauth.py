"""Connecting a Google account: the OAuth 2.0 web-server flow (google-auth-oauthlib), with PKCE.

Scopes, narrowest that do the job:

* ``calendar.events`` - read events of every calendar the expert picks as busy (their own and
  ones shared with them), write the booking events, and watch for changes. The narrower
  ``calendar.events.owned`` would refuse a destination calendar that is shared with the expert
  as writer, and ``calendar.events.readonly`` cannot write, so one scope covers both halves.
  ``calendar`` (full access) would also allow deleting calendars and changing sharing: not asked.
* ``calendar.calendarlist.readonly`` - list the calendars so the expert can pick. Chosen over
  ``calendar.readonly``, which would also expose settings and ACLs.
* ``calendar.freebusy`` - only when ``CALBOOK_GOOGLE_FREEBUSY_CHECK`` is on (live free/busy
  check before a booking is written); otherwise not asked for.
* ``openid email`` - the account's address, shown on the connection.

``access_type=offline`` and ``prompt=consent`` make Google return a refresh token every time,
also when the expert reconnects. Google's granular consent lets the expert untick scopes, so
the exchange checks what was granted and refuses with :class:`MissingScopesError`.

The caller keeps ``state`` and ``code_verifier`` server-side (never in the browser) between
:func:`authorization_request` and :func:`exchange_code`.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import requests
from google.auth import jwt
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from config.settings import Settings
from connectors.base import TransientError
from connectors.google.credentials import credentials_to_dict
from connectors.google.errors import GoogleOAuthError, MissingScopesError, StateMismatchError

SCOPE_ROOT = "https://www.googleapis.com/auth/"
CALENDAR_EVENTS = SCOPE_ROOT + "calendar.events"
CALENDAR_LIST_READONLY = SCOPE_ROOT + "calendar.calendarlist.readonly"
CALENDAR_FREEBUSY = SCOPE_ROOT + "calendar.freebusy"
CALENDAR_FULL = SCOPE_ROOT + "calendar"
IDENTITY_SCOPES = ("openid", "email")
CALLBACK_PATH = "/v1/oauth/google/callback"

_IMPLIED_BY: dict[str, frozenset[str]] = {
    # A broader grant (e.g. the expert granted full calendar access to this client before)
    # satisfies a narrower requirement.
    CALENDAR_EVENTS: frozenset({CALENDAR_FULL}),
    CALENDAR_LIST_READONLY: frozenset(
        {CALENDAR_FULL, SCOPE_ROOT + "calendar.readonly", SCOPE_ROOT + "calendar.calendarlist"}
    ),
    CALENDAR_FREEBUSY: frozenset({CALENDAR_FULL, SCOPE_ROOT + "calendar.readonly"}),
}


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Send the browser to ``url``; keep ``state`` and ``code_verifier`` server-side."""

    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class GoogleGrant:
    """A completed connection: ``credentials`` to encrypt and store, the account's e-mail."""

    credentials: dict[str, Any]
    account_email: str
    scopes: frozenset[str]


def required_scopes(settings: Settings) -> frozenset[str]:
    scopes = {CALENDAR_EVENTS, CALENDAR_LIST_READONLY}
    if settings.google_freebusy_check:
        scopes.add(CALENDAR_FREEBUSY)
    return frozenset(scopes)


def requested_scopes(settings: Settings) -> list[str]:
    return sorted(required_scopes(settings)) + list(IDENTITY_SCOPES)


def callback_uri(settings: Settings) -> str:
    """Where Google sends the expert's browser back: this server's callback route."""
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def authorization_request(
    redirect_uri: str, *, settings: Settings, login_hint: str | None = None
) -> AuthorizationRequest:
    """The URL that starts the consent screen, with a fresh random ``state`` and PKCE verifier."""
    state = secrets.token_urlsafe(32)
    flow = _flow(settings, redirect_uri, state=state, code_verifier=None)
    extra: dict[str, str] = {"login_hint": login_hint} if login_hint else {}
    url, issued_state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="false", state=state, **extra
    )
    if issued_state != state or not flow.code_verifier:
        raise GoogleOAuthError("authorization request could not be prepared")
    return AuthorizationRequest(url=url, state=state, code_verifier=flow.code_verifier)


def exchange_code(
    *,
    code: str,
    returned_state: str,
    expected_state: str,
    code_verifier: str,
    redirect_uri: str,
    settings: Settings,
) -> GoogleGrant:
    """Trade the callback's ``code`` for tokens, check the grant, and read the account e-mail.

    Raises ``StateMismatchError`` (callback not ours), ``MissingScopesError`` (a required scope
    unticked), ``GoogleOAuthError`` (Google refused the code, no refresh token, no e-mail) or
    ``TransientError`` (token endpoint unreachable).
    """
    if not hmac.compare_digest(returned_state.encode(), expected_state.encode()):
        raise StateMismatchError("OAuth state does not match the one issued")
    flow = _flow(settings, redirect_uri, state=expected_state, code_verifier=code_verifier)
    try:
        token = flow.fetch_token(code=code)
    except Warning as changed:
        # oauthlib raises when Google's ``scope`` differs from the request, which it always
        # does ("email" comes back as ".../userinfo.email", unticked scopes are missing).
        # We compare scopes ourselves below, so take the token it carries.
        token = getattr(changed, "token", None)
        if token is None:
            raise GoogleOAuthError("token response could not be read") from changed
        flow.oauth2session.token = token
    except OAuth2Error as exc:
        raise GoogleOAuthError(f"Google refused the authorization code ({exc.error})") from exc
    except requests.RequestException as exc:
        raise TransientError("Google token endpoint unreachable") from exc

    granted = _granted_scopes(token, requested_scopes(settings))
    missing = frozenset(scope for scope in required_scopes(settings) if not _satisfied(scope, granted))
    if missing:
        raise MissingScopesError(missing)
    credentials = flow.credentials
    if not credentials.refresh_token:
        raise GoogleOAuthError("Google returned no refresh token")
    email = _email_from_id_token(token.get("id_token"), settings.google_client_id or "")
    return GoogleGrant(
        credentials=credentials_to_dict(credentials, sorted(granted)), account_email=email, scopes=granted
    )


def _flow(settings: Settings, redirect_uri: str, *, state: str, code_verifier: str | None) -> Flow:
    if not settings.google_client_id or not settings.google_client_secret:
        raise GoogleOAuthError("Google OAuth client is not configured (CALBOOK_GOOGLE_CLIENT_ID/SECRET)")
    client_config = {
        "web": {
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret,
            "auth_uri": settings.google_auth_uri,
            "token_uri": settings.google_token_uri,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        client_config,
        scopes=requested_scopes(settings),
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )


def _granted_scopes(token: dict[str, Any], requested: list[str]) -> frozenset[str]:
    scope = token.get("scope")
    if scope is None:
        return frozenset(requested)  # RFC 6749 5.1: omitted means "as requested"
    if isinstance(scope, str):
        return frozenset(scope.split())
    return frozenset(str(s) for s in scope)


def _satisfied(scope: str, granted: frozenset[str]) -> bool:
    return scope in granted or bool(_IMPLIED_BY.get(scope, frozenset()) & granted)


def _email_from_id_token(id_token: Any, client_id: str) -> str:
    """The account e-mail from the ID token.

    The token came straight from Google's token endpoint over TLS, which OpenID Connect Core
    3.1.3.7 accepts in place of checking the signature; the audience is still checked.
    """
    if not id_token:
        raise GoogleOAuthError("Google returned no ID token; is the openid scope configured?")
    try:
        claims = jwt.decode(str(id_token), verify=False)
    except ValueError as exc:
        raise GoogleOAuthError("Google returned an unreadable ID token") from exc
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise GoogleOAuthError("ID token was issued to another client")
    email = claims.get("email")
    if not email or claims.get("email_verified") is False:
        raise GoogleOAuthError("Google account has no verified e-mail address")
    return str(email)
