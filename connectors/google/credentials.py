"""Stored Google credentials: the dict kept (Fernet-encrypted) in the store, and its live form.

The stored dict holds only what belongs to the expert's grant: access token, refresh token,
expiry and granted scopes. The OAuth client id/secret and the token endpoint come from settings
at load time, so rotating the client secret or pointing tests at another token endpoint needs
no data migration.

Token refreshes go through ``requests`` (``google.auth.transport.requests``), not through the
httplib2 connection that carries the API calls: google-auth's requests transport is the
maintained one, it keeps its own connection (so a refresh never shares httplib2's state), and
tests can intercept it with ``responses`` while the API calls still reach the fake server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import google.auth.transport.requests
import google_auth_httplib2
import requests
from google.oauth2.credentials import Credentials

from config.settings import Settings
from connectors.google.gated_http import GatedHttp
from connectors.rate_limits import UNLIMITED, RequestGate

CREDENTIALS_FORMAT = 1
HTTP_TIMEOUT_SECONDS = 30


def credentials_from_dict(data: dict[str, Any], settings: Settings) -> Credentials:
    """Live google-auth credentials from the stored dict plus the OAuth client from settings.

    ``scopes`` is deliberately not passed on: google-auth would then send ``scope`` with every
    refresh and fail it when Google answers with a differently-spelled but equivalent set.
    """
    expiry = _parse_expiry(data.get("expiry"))
    return Credentials(
        token=data.get("token"),
        refresh_token=data.get("refresh_token"),
        token_uri=settings.google_token_uri,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        expiry=expiry,
    )


def credentials_to_dict(credentials: Credentials, scopes: list[str] | None) -> dict[str, Any]:
    """The dict to store (encrypt with ``connectors.secrets.encrypt_json``); no client secret in it."""
    expiry = credentials.expiry
    return {
        "format": CREDENTIALS_FORMAT,
        "token": credentials.token,
        "refresh_token": credentials.refresh_token,
        "expiry": expiry.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if expiry else None,
        "scopes": sorted(scopes) if scopes is not None else None,
    }


def refresh_transport() -> google.auth.transport.requests.Request:
    """The transport google-auth uses to call the token endpoint (a fresh ``requests`` session)."""
    return google.auth.transport.requests.Request(session=requests.Session())


def authorized_http(
    credentials: Credentials,
    refresh: google.auth.transport.requests.Request,
    timeout: float = HTTP_TIMEOUT_SECONDS,
    gate: RequestGate = UNLIMITED,
) -> google_auth_httplib2.AuthorizedHttp:
    """An httplib2 client that signs API calls and refreshes tokens over ``requests``.

    ``AuthorizedHttp`` refreshes before a call when the token is expired and again after a 401;
    both use ``_request``, which we swap for the requests transport (see module docstring).
    httplib2 is not thread-safe: one of these per provider, one provider per task. Every API
    request waits for ``gate`` (the connection's shared rate limits, ``gated_http``).
    """
    authed = google_auth_httplib2.AuthorizedHttp(credentials, http=GatedHttp(gate, timeout=timeout))
    authed._request = refresh
    return authed


def _parse_expiry(value: Any) -> datetime | None:
    """google-auth wants a naive UTC expiry; we store ISO 8601 with ``Z``."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
