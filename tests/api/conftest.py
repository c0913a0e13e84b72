"""Fixtures for the HTTP tests: an app on the ``store`` fixture (SQLite and PostgreSQL), tokens, a published expert.

The services read the real clock, so bookings are placed relative to now: the expert
publishes 09:00-17:00 UTC every day and tests book "tomorrow" or later. Tests that need
time to pass (no-show, a booking that has started) travel with ``time_machine``.
"""


from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.api import (
    EXPERT,
    USER,
    auth,
    booking_body,
    make_settings,
)
from tests.support.factories import publish


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(store: Store, api_settings: Settings) -> FastAPI:
    return create_app(store, api_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def expert(store: Store) -> AvailabilitySettings:
    """``EXPERT`` has published 09:00-17:00 UTC every day, 60 USD/h, 15 min buffer, no auto-confirm."""
    return publish(store, EXPERT, now=utcnow())


@pytest.fixture
def booking(client: TestClient, expert: AvailabilitySettings) -> dict[str, Any]:
    """A pending booking of ``USER`` with ``EXPERT`` tomorrow 10:00-11:00 UTC."""
    response = client.post("/v1/bookings", json=booking_body(), headers=auth(USER))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
