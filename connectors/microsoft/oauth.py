"""Connecting a Microsoft account: OAuth 2.0 authorization code flow with PKCE through MSAL.

Scopes: ``Calendars.ReadWrite`` (read the busy calendars, write booking events, subscribe to
changes), ``User.Read`` (the account's address) and ``email``; MSAL adds ``openid profile
offline_access`` itself (``offline_access`` is what brings the refresh token).

MSAL's HTTP goes through calbook's own client (``graph.MsalHttp`` over httpx), so the TLS and
timeout rules are the same as for Graph calls. The flow dict of
``initiate_auth_code_flow`` (state, PKCE verifier, nonce) is kept server-side, encrypted, with
the OAuth state row; the browser only carries ``state``. Tokens are held by calbook (encrypted
in the connection), not in MSAL's cache: each refresh is ``acquire_token_by_refresh_token`` and
the rotated refresh token is saved back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import msal

from config.settings import Settings
from connectors.base import AuthError, ConnectorError, PermanentError, TransientError

SCOPES = ("Calendars.ReadWrite", "User.Read", "email")
CALLBACK_PATH = "/v1/oauth/microsoft/callback"
REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
"""Token-endpoint errors that only the expert can fix by connecting again (AADSTS700082, a refresh
token expired after 90 days without use, comes as ``invalid_grant``)."""


class MicrosoftOAuthError(ConnectorError):
    """The authorization could not be completed; the expert should start connecting again."""


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    url: str
    state: str
    flow: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MicrosoftGrant:
    credentials: dict[str, Any]
    account: str


def callback_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def authority(settings: Settings) -> str:
    return settings.microsoft_authority_host.rstrip("/") + "/" + settings.microsoft_tenant.strip("/")


class MsalHttp:
    """The ``http_client`` MSAL is given: calbook's httpx client with MSAL's call shape.

    MSAL takes the token endpoint from the authority's OpenID metadata and has no setting for
    another one; with ``token_endpoint`` set, token requests go there instead.
    """

    def __init__(self, client: httpx.Client, token_endpoint: str | None = None) -> None:
        self._client = client
        self._token_endpoint = token_endpoint

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any
    ) -> httpx.Response:
        if self._token_endpoint and url.split("?")[0].endswith("/oauth2/v2.0/token"):
            url = self._token_endpoint
        if isinstance(data, dict) or data is None:
            return self._client.post(url, params=params, data=data, headers=headers)
        return self._client.post(url, params=params, content=data, headers=headers)

    def close(self) -> None:
        self._client.close()


def application(settings: Settings, http: httpx.Client | None = None) -> msal.ConfidentialClientApplication:
    """The MSAL client of this server (a web app: confidential, with the client secret).

    Instance discovery is off: the authority is the operator's setting, not user input, and a
    sovereign cloud or a test authority is not in MSAL's list. A configured token endpoint
    replaces the one the authority's metadata names (``MsalHttp``).
    """
    if not settings.microsoft_client_id or not settings.microsoft_client_secret:
        raise MicrosoftOAuthError("the Microsoft app is not configured (CALBOOK_MICROSOFT_CLIENT_ID/SECRET)")
    client = http or httpx.Client(timeout=15)
    try:
        app = msal.ConfidentialClientApplication(
            settings.microsoft_client_id, client_credential=settings.microsoft_client_secret,
            authority=authority(settings), instance_discovery=False,
            http_client=MsalHttp(client, settings.microsoft_token_endpoint),
            token_cache=msal.TokenCache(),
        )
    except ValueError as exc:  # the authority's metadata could not be read
        raise TransientError("Microsoft sign-in metadata unavailable") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"Microsoft sign-in unreachable ({type(exc).__name__})") from exc
    return app


def start(settings: Settings, login_hint: str | None = None) -> AuthorizationStart:
    """The consent URL with a fresh state, nonce and PKCE verifier (MSAL makes all three)."""
    app = application(settings)
    flow = app.initiate_auth_code_flow(list(SCOPES), redirect_uri=callback_uri(settings), login_hint=login_hint,
                                       prompt="select_account")
    if "auth_uri" not in flow or not flow.get("code_verifier"):
        raise MicrosoftOAuthError("authorization request could not be prepared")
    return AuthorizationStart(url=str(flow["auth_uri"]), state=str(flow["state"]), flow=dict(flow))


def complete(settings: Settings, flow: dict[str, Any], code: str, state: str) -> MicrosoftGrant:
    """Trade the code for tokens (MSAL checks the state, sends the verifier, checks the ID token)."""
    app = application(settings)
    try:
        answer = app.acquire_token_by_auth_code_flow(flow, {"code": code, "state": state})
    except ValueError as exc:  # state mismatch, a flow MSAL cannot use
        raise MicrosoftOAuthError("the authorization does not match the one started") from exc
    except httpx.HTTPError as exc:
        raise TransientError("Microsoft token endpoint unreachable") from exc
    if "error" in answer:
        raise MicrosoftOAuthError(f"Microsoft refused the authorization code ({answer['error']})")
    if not answer.get("refresh_token"):
        raise MicrosoftOAuthError("Microsoft returned no refresh token; was offline_access granted?")
    claims = answer.get("id_token_claims") or {}
    account = claims.get("preferred_username") or claims.get("email") or claims.get("upn")
    if not account:
        raise MicrosoftOAuthError("Microsoft returned no account name")
    return MicrosoftGrant(credentials=token_credentials(answer, None, claims), account=str(account))


def token_credentials(answer: dict[str, Any], previous: dict[str, Any] | None,
                      claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """What calbook keeps (encrypted): the tokens, when the access token expires, and the tenant."""
    previous = previous or {}
    claims = claims or {}
    return {
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token") or previous.get("refresh_token"),
        "expires_at": time.time() + float(answer.get("expires_in") or 3600),
        "tenant": claims.get("tid") or previous.get("tenant"),
    }


def refresh(settings: Settings, credentials: dict[str, Any], http: httpx.Client | None = None) -> dict[str, Any]:
    """New tokens from the refresh token; ``AuthError`` (never retried) when the grant is gone."""
    refresh_token = credentials.get("refresh_token")
    if not refresh_token:
        raise AuthError("microsoft: no refresh token stored; connect again")
    app = application(settings, http)
    try:
        answer = app.acquire_token_by_refresh_token(refresh_token, scopes=[s for s in SCOPES if s != "email"])
    except httpx.HTTPError as exc:
        raise TransientError(f"Microsoft token endpoint unreachable ({type(exc).__name__})") from exc
    error = answer.get("error")
    if error:
        codes = answer.get("error_codes") or []
        detail = f"microsoft token refresh failed ({error}" + (f", AADSTS{codes[0]}" if codes else "") + ")"
        if error in REAUTH_ERRORS:
            raise AuthError(detail)
        if error in ("invalid_client", "unauthorized_client"):
            raise PermanentError(detail)  # our app registration: an operator must fix it
        raise TransientError(detail)
    return token_credentials(answer, credentials)
