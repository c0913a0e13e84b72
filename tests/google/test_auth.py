"""Token refresh through google-auth: refreshed tokens are reported, invalid_grant is AuthError."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from connectors.base import AuthError
from connectors.google.provider import GoogleCalendarProvider
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import ACCESS_TOKEN, CLIENT_ID, REFRESH_TOKEN, TOKEN_URI, stored_credentials


def refreshed(mock: responses.RequestsMock, token: str = "access-token-2") -> None:
    mock.add(
        responses.POST,
        TOKEN_URI,
        json={"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": "openid"},
    )


def test_expired_token_is_refreshed_and_reported(
    make_provider: Callable[..., GoogleCalendarProvider],
    fake: FakeGoogleCalendar,
    token_endpoint: responses.RequestsMock,
) -> None:
    fake.valid_tokens = {"access-token-2"}
    refreshed(token_endpoint)
    reported: list[dict[str, Any]] = []
    provider = make_provider(
        stored_credentials(expires_in=timedelta(minutes=-5)), on_credentials_refreshed=reported.append
    )

    assert provider.list_calendars()

    form = parse_qs(_text(token_endpoint.calls[0].request.body))
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == [REFRESH_TOKEN]
    assert form["client_id"] == [CLIENT_ID]
    assert len(reported) == 1
    assert reported[0]["token"] == "access-token-2"
    assert reported[0]["refresh_token"] == REFRESH_TOKEN
    assert reported[0]["expiry"].endswith("Z")
    assert "client_secret" not in reported[0]
    assert provider.updated_credentials() == reported[0]
    assert fake.calls()[0].headers["authorization"] == "Bearer access-token-2"


def test_valid_token_is_not_refreshed(provider: GoogleCalendarProvider, token_endpoint: responses.RequestsMock) -> None:
    provider.list_calendars()
    assert len(token_endpoint.calls) == 0
    assert provider.updated_credentials() is None


def test_401_triggers_a_refresh_and_the_call_is_repeated(
    make_provider: Callable[..., GoogleCalendarProvider],
    fake: FakeGoogleCalendar,
    token_endpoint: responses.RequestsMock,
) -> None:
    provider = make_provider()
    provider.list_calendars()
    fake.valid_tokens = {"access-token-2"}  # Google revoked the access token early
    refreshed(token_endpoint)

    assert provider.list_calendars()
    assert [c.headers["authorization"] for c in fake.calls()] == [
        f"Bearer {ACCESS_TOKEN}",
        f"Bearer {ACCESS_TOKEN}",
        "Bearer access-token-2",
    ]
    assert provider.updated_credentials()["token"] == "access-token-2"


def test_invalid_grant_on_refresh_is_auth_error(
    make_provider: Callable[..., GoogleCalendarProvider],
    fake: FakeGoogleCalendar,
    token_endpoint: responses.RequestsMock,
) -> None:
    token_endpoint.add(
        responses.POST,
        TOKEN_URI,
        status=400,
        json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )
    provider = make_provider(stored_credentials(expires_in=timedelta(minutes=-5)))

    with pytest.raises(AuthError) as caught:
        provider.list_calendars()

    assert "invalid_grant" in str(caught.value)
    assert REFRESH_TOKEN not in str(caught.value)
    assert fake.calls() == []
    assert provider.updated_credentials() is None


def test_401_that_survives_refresh_is_auth_error(
    make_provider: Callable[..., GoogleCalendarProvider],
    fake: FakeGoogleCalendar,
    token_endpoint: responses.RequestsMock,
) -> None:
    fake.valid_tokens = set()
    refreshed(token_endpoint, "access-token-2")
    refreshed(token_endpoint, "access-token-3")
    reported: list[dict[str, Any]] = []
    provider = make_provider(on_credentials_refreshed=reported.append)

    with pytest.raises(AuthError):
        provider.list_calendars()
    assert reported and reported[-1]["token"] in {"access-token-2", "access-token-3"}


def _text(body: str | bytes | None) -> str:
    return body.decode() if isinstance(body, bytes) else body or ""
