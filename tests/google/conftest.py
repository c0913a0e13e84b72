"""Fixtures for the Google connector: a live fake Calendar API and a mocked token endpoint.

API calls go through the real google-api-python-client over httplib2 to the fake server on
127.0.0.1. Token calls (code exchange, refresh) go through ``requests`` (the provider refreshes
over google-auth's requests transport, see ``connectors.google.credentials``), intercepted by
``responses``; nothing reaches the internet.
"""


from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import responses

from config.retry import GOOGLE_CALL
from config.settings import Settings
from connectors.google.backoff import Backoff
from connectors.google.provider import GoogleCalendarProvider
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import (
    ACCESS_TOKEN,
    AUTH_URI,
    CALENDAR,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URI,
    stored_credentials,
)


@pytest.fixture
def fake() -> Iterator[FakeGoogleCalendar]:
    server = FakeGoogleCalendar()
    server.valid_tokens.add(ACCESS_TOKEN)
    server.add_calendar(CALENDAR, "Work", "UTC", "owner", primary=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake: FakeGoogleCalendar, tmp_path: Any) -> Settings:
    assert fake._server is not None
    return Settings(
        data_dir=tmp_path,
        google_client_id=CLIENT_ID,
        google_client_secret=CLIENT_SECRET,
        google_api_root=f"http://127.0.0.1:{fake._server.server_address[1]}/",
        google_token_uri=TOKEN_URI,
        google_auth_uri=AUTH_URI,
    )


@pytest.fixture
def token_endpoint() -> Iterator[responses.RequestsMock]:
    """Every ``requests`` call is intercepted; an unregistered URL fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_provider(
    settings: Settings, sleeps: list[float], token_endpoint: responses.RequestsMock
) -> Iterator[Callable[..., GoogleCalendarProvider]]:
    made: list[GoogleCalendarProvider] = []

    def make(credentials: dict[str, Any] | None = None, **kwargs: Any) -> GoogleCalendarProvider:
        four_tries = replace(GOOGLE_CALL, max_attempts=4)
        kwargs.setdefault("backoff", Backoff(four_tries, sleep=sleeps.append, random=lambda: 1.0))
        provider = GoogleCalendarProvider(
            credentials or stored_credentials(), settings=settings, connection_id="conn-1", **kwargs
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., GoogleCalendarProvider]) -> GoogleCalendarProvider:
    return make_provider()
