"""Property-based tests against the app's own OpenAPI document (schemathesis 4).

For every operation, a bounded number of generated requests, valid (positive) and invalid
(negative), with a valid token: the app must never answer 5xx, and every answer must match
the schema it documents (problem+json errors included).

Each operation is its own pytest case, driven by ``operation.as_strategy()`` under
``@given``: schemathesis' lazy ``from_fixture`` loader does not work with pytest 9, and
the app must be built on the parametrized ``store`` fixture (SQLite and PostgreSQL).
Requests go through Starlette's ``TestClient`` (``case.as_transport_kwargs()`` then
``case.validate_response()``), because schemathesis' own requests-based ASGI transport
breaks when ``urllib3-future`` (pulled in by niquests/caldav) replaces ``urllib3``.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.api import USER, auth
from tests.support.factories import publish

MAX_EXAMPLES = 20


# Connecting a CalDAV account or an ICS feed makes the API dial the URL in the body: generated URLs
# would send traffic to arbitrary hosts, so those two operations are covered by tests/sync instead.
DIALS_OUT = {("post", "/v1/calendar-connections/caldav"), ("post", "/v1/calendar-connections/ics")}


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation of this issue, read from an app that never touches its store."""
    offline = create_app(Store.from_url("sqlite:///never-opened.sqlite"), Settings(jwt_secret="x" * 64))
    return [
        (method, path) for path, item in offline.openapi()["paths"].items() for method in item
        if (method, path) not in DIALS_OUT
    ]


CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance]


def _send(client: TestClient, case: schemathesis.Case) -> Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth(USER))
    data = kwargs.pop("data", None)
    if isinstance(data, (bytes, str)):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    return client.request(**kwargs)


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: v)
def test_operation(method: str, path: str, app: FastAPI, store: Store, client: TestClient) -> None:
    publish(store, USER, now=utcnow())  # so that some generated requests meet real settings
    heartbeats.register(store, "celery@schemathesis/1", "celery@schemathesis", 1)  # a worker runs: /readyz 200
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method.upper()]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        try:
            response = _send(client, case)
        except httpx.InvalidURL:
            reject()  # a URL over httpx's 64 KiB limit: no client can send it, nothing to check
        case.validate_response(response, checks=CHECKS, headers=auth(USER))

    run()
