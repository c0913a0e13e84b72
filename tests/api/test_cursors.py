"""Crafted cursors on ``/v1/bookings`` and ``/v1/booking-requests``: 422, never a database error."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.api import USER, assert_problem, auth


def _cursor(at: str, item_id: str) -> str:
    raw = json.dumps([at, item_id]).encode()  # json escapes a lone surrogate as \\ud800: it decodes back to one
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED = [
    _cursor("2030-01-01T00:00:00+00:00", "abc\u0000def"),
    _cursor("2030-01-01T00:00:00+00:00", "lone\ud800surrogate"),
    _cursor("0001-01-01T00:00:00+14:00", "x"),
    _cursor("0001-01-01T00:00:00-14:00", "x"),
    _cursor("9999-12-31T23:59:59-14:00", "x"),
    _cursor("9999-12-31T23:59:59+14:00", "x"),
    _cursor("1969-12-31T23:59:59+00:00", "x"),
    _cursor("2030-01-01T00:00:00", "naive"),
    _cursor("2030-01-01T00:00:00+00:00", ""),
    _cursor("2030-01-01T00:00:00+00:00", "x" * 65),
    _cursor("2030-01-01T00:00:00+00:00", "tab\there"),
    base64.urlsafe_b64encode(b'["2030-01-01T00:00:00+00:00", 5]').decode().rstrip("="),
    base64.urlsafe_b64encode(b"[1, 2, 3]").decode().rstrip("="),
    base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    "A",
]


@pytest.mark.parametrize("path", ["/v1/bookings", "/v1/booking-requests"])
def test_crafted_cursors_are_validation_errors(client: TestClient, path: str) -> None:
    for cursor in CRAFTED:
        response = client.get(path, params={"cursor": cursor}, headers=auth(USER))
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "cursor", (cursor, body)


@pytest.mark.parametrize("path", ["/v1/bookings", "/v1/booking-requests"])
def test_a_cursor_the_server_made_still_works(client: TestClient, path: str) -> None:
    good = _cursor("2030-01-01T00:00:00+02:00", "some-id")
    assert client.get(path, params={"cursor": good}, headers=auth(USER)).status_code == 200


def test_a_value_the_database_refuses_is_a_422(app: FastAPI, store) -> None:  # type: ignore[no-untyped-def]
    """The net under validation: a DataError from either database is mapped once, to 422."""

    @app.get("/test-only/data-error")
    def data_error() -> None:
        with store.read() as conn:
            if store.dialect == "postgresql":
                conn.execute(text("SELECT CAST(:v AS integer)"), {"v": "not a number"})
            else:
                from sqlalchemy.exc import DataError

                raise DataError("SELECT ?", ("x",), ValueError("out of range"))

    with TestClient(app) as client:
        body = assert_problem(client.get("/test-only/data-error"), 422, "validation_error")
    assert "SELECT" not in body["detail"] and "not a number" not in body["detail"]
