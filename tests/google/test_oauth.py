"""The OAuth web-server flow: authorization URL, code exchange, scope check, account e-mail."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from config.settings import Settings
from connectors.google.errors import GoogleOAuthError, MissingScopesError, StateMismatchError
from connectors.google.oauth import (
    CALENDAR_EVENTS,
    CALENDAR_LIST_READONLY,
    authorization_request,
    exchange_code,
)
from tests.support.google import AUTH_URI, CLIENT_ID, CLIENT_SECRET, TOKEN_URI, id_token

REDIRECT = "https://calbook.example/v1/oauth/google/callback"
GRANTED = f"openid https://www.googleapis.com/auth/userinfo.email {CALENDAR_EVENTS} {CALENDAR_LIST_READONLY}"


def token_response(scope: str = GRANTED, **overrides: object) -> dict[str, object]:
    claims = {"iss": "https://accounts.google.com", "aud": CLIENT_ID, "sub": "1234", "email": "expert@example.com"}
    claims["email_verified"] = True
    body: dict[str, object] = {
        "access_token": "access-token-1",
        "refresh_token": "refresh-token-1",
        "expires_in": 3599,
        "token_type": "Bearer",
        "scope": scope,
        "id_token": id_token(claims),
    }
    body.update(overrides)
    return body


def test_authorization_url_asks_for_offline_consent_with_pkce(settings: Settings) -> None:
    request = authorization_request(REDIRECT, settings=settings)

    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTH_URI
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) == {CALENDAR_EVENTS, CALENDAR_LIST_READONLY, "openid", "email"}
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["state"] == request.state and len(request.state) >= 32
    digest = base64.urlsafe_b64encode(hashlib.sha256(request.code_verifier.encode()).digest()).decode().rstrip("=")
    assert query["code_challenge"] == digest
    assert query["code_challenge_method"] == "S256"
    assert request.code_verifier not in request.url
    assert authorization_request(REDIRECT, settings=settings).state != request.state


def test_freebusy_scope_only_when_the_check_is_enabled(settings: Settings) -> None:
    enabled = settings.model_copy(update={"google_freebusy_check": True})
    scope = parse_qs(urlsplit(authorization_request(REDIRECT, settings=enabled).url).query)["scope"][0]
    assert "https://www.googleapis.com/auth/calendar.freebusy" in scope.split()


def test_code_exchange_returns_storable_credentials_and_email(
    settings: Settings, token_endpoint: responses.RequestsMock
) -> None:
    token_endpoint.add(responses.POST, TOKEN_URI, json=token_response())
    request = authorization_request(REDIRECT, settings=settings)

    grant = exchange_code(
        code="auth-code",
        returned_state=request.state,
        expected_state=request.state,
        code_verifier=request.code_verifier,
        redirect_uri=REDIRECT,
        settings=settings,
    )

    sent = parse_qs(token_endpoint.calls[0].request.body)
    assert sent["code"] == ["auth-code"]
    assert sent["code_verifier"] == [request.code_verifier]
    assert sent["redirect_uri"] == [REDIRECT]
    assert sent["grant_type"] == ["authorization_code"]
    assert grant.account_email == "expert@example.com"
    assert grant.credentials["token"] == "access-token-1"
    assert grant.credentials["refresh_token"] == "refresh-token-1"
    assert grant.credentials["expiry"].endswith("Z")
    assert CALENDAR_EVENTS in grant.credentials["scopes"]
    assert CLIENT_SECRET not in str(grant.credentials)


def test_missing_calendar_scope_is_refused(settings: Settings, token_endpoint: responses.RequestsMock) -> None:
    token_endpoint.add(responses.POST, TOKEN_URI, json=token_response(scope=f"openid {CALENDAR_LIST_READONLY}"))
    request = authorization_request(REDIRECT, settings=settings)

    with pytest.raises(MissingScopesError) as caught:
        exchange_code(
            code="auth-code",
            returned_state=request.state,
            expected_state=request.state,
            code_verifier=request.code_verifier,
            redirect_uri=REDIRECT,
            settings=settings,
        )
    assert caught.value.missing == frozenset({CALENDAR_EVENTS})


def test_state_mismatch_is_refused_before_calling_google(
    settings: Settings, token_endpoint: responses.RequestsMock
) -> None:
    request = authorization_request(REDIRECT, settings=settings)
    with pytest.raises(StateMismatchError):
        exchange_code(
            code="auth-code",
            returned_state="forged",
            expected_state=request.state,
            code_verifier=request.code_verifier,
            redirect_uri=REDIRECT,
            settings=settings,
        )
    assert len(token_endpoint.calls) == 0


def test_refused_code_is_an_oauth_error(settings: Settings, token_endpoint: responses.RequestsMock) -> None:
    token_endpoint.add(
        responses.POST, TOKEN_URI, status=400, json={"error": "invalid_grant", "error_description": "Bad Request"}
    )
    request = authorization_request(REDIRECT, settings=settings)
    with pytest.raises(GoogleOAuthError, match="invalid_grant"):
        exchange_code(
            code="used-code",
            returned_state=request.state,
            expected_state=request.state,
            code_verifier=request.code_verifier,
            redirect_uri=REDIRECT,
            settings=settings,
        )


def test_id_token_for_another_client_is_refused(settings: Settings, token_endpoint: responses.RequestsMock) -> None:
    other = id_token({"aud": "someone-else", "email": "x@example.com", "email_verified": True})
    token_endpoint.add(responses.POST, TOKEN_URI, json=token_response(id_token=other))
    request = authorization_request(REDIRECT, settings=settings)
    with pytest.raises(GoogleOAuthError, match="another client"):
        exchange_code(
            code="auth-code",
            returned_state=request.state,
            expected_state=request.state,
            code_verifier=request.code_verifier,
            redirect_uri=REDIRECT,
            settings=settings,
        )
