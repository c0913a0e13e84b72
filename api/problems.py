"""Every error leaves as ``application/problem+json`` (RFC 9457), mapped here and only here.

Domain errors already carry their stable ``code`` and HTTP status (``booking_engine.errors``),
so the mapping is one handler. The others cover what happens before a service runs:
FastAPI's request validation (422 ``validation_error`` with an ``errors`` list), unknown
routes (404 ``not_found``), a user-given URL the server may not call (422 ``validation_error`` on
``url``, see ``connectors.url_policy``), wrong methods (405 ``method_not_allowed``), oversized bodies
(413 ``payload_too_large``, see ``api.body_limit``), an unreachable database (503
``service_unavailable``), a value the database refuses as data (422 ``validation_error``), and a
catch-all that logs the exception with the request's
context and answers a bare 500 ``internal_error``: no traceback, no SQL, no secret leaks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_engine.errors import BookingError
from connectors.url_policy import UnsafeURL

log = logging.getLogger("api.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:calbook:problem:"

_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("validation_error", "The request is not valid"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "The request is not valid"),
    428: ("precondition_failed", "A precondition is required"),
    429: ("too_many_requests", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "The service is unavailable"),
}


class ProblemDetail(BaseModel):
    """One item of a validation problem's ``errors``: where, and what is wrong."""

    field: str | None = None
    message: str
    type: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document with calbook's stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[ProblemDetail] | None = None


def problem_body(
    status: int, code: str, title: str, detail: str, instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return json.dumps(body, ensure_ascii=False, default=str).encode()


def problem(
    status: int, code: str | None = None, title: str | None = None, detail: str | None = None,
    instance: str | None = None, errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    default_code, default_title = _HTTP_CODES.get(status, (f"http_{status}", "Error"))
    title = title or default_title
    body = problem_body(status, code or default_code, title, detail or title, instance, errors)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def unauthenticated_headers() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="calbook"'}


def _booking_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BookingError)
    field = exc.extra.get("field")
    errors = [{"field": str(field), "message": exc.extra.get("message", exc.detail),
               "type": exc.extra.get("error_type", exc.code)}] if field else None
    headers = unauthenticated_headers() if exc.status == 401 else None
    if exc.extra.get("retry_after") is not None:
        headers = {**(headers or {}), "Retry-After": str(int(exc.extra["retry_after"]))}
    return problem(exc.status, exc.code, exc.extra.get("title") or exc.title, exc.detail, request.url.path, errors,
                   headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _json_error(raw: Any, position: int, reason: str) -> dict[str, Any]:
    """A JSON syntax error, located the way an editor shows it: line and column (1-based)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw or "")
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return {"field": "body", "message": f"malformed JSON at line {line}, column {column}: {reason}",
            "type": "json_invalid"}


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _unsupported_media_type(request: Request) -> Response:
    """A JSON body sent without ``Content-Type: application/json`` (FastAPI then reads it as bytes)."""
    sent = request.headers.get("content-type")
    what = f"Content-Type {sent!r}" if sent else "no Content-Type"
    detail = f"the request body must be JSON, sent with 'Content-Type: application/json' (this request had {what})"
    header = "Accept-Patch" if request.method == "PATCH" else "Accept-Post"
    return problem(415, None, None, detail, request.url.path, headers={header: "application/json"})


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw_errors = exc.errors()
    if not _is_json(request.headers.get("content-type")) and any(
        tuple(err.get("loc", ())) == ("body",) and err.get("type") != "missing" for err in raw_errors
    ):
        return _unsupported_media_type(request)
    errors = []
    for err in raw_errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
            errors.append(_json_error(exc.body, loc[1], str((err.get("ctx") or {}).get("error", "invalid JSON"))))
            continue
        errors.append({"field": _location(loc), "message": str(err.get("msg", "invalid")), "type": err.get("type")})
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    detail = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return problem(422, "validation_error", None, detail, request.url.path, errors)


def _unsafe_url(request: Request, exc: Exception) -> Response:
    """A URL that points at a private or local network (SSRF), or does not resolve: the body's ``url``."""
    assert isinstance(exc, UnsafeURL)
    log.info("user-given url refused", extra={"path": request.url.path, "host": exc.host, "address": exc.address,
                                              "error": type(exc).__name__})
    errors = [{"field": "url", "message": str(exc), "type": "unsafe_url"}]
    return problem(422, "validation_error", None, str(exc), request.url.path, errors)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400:
        # FastAPI answers 400 for a body it could not read at all; it is a validation problem.
        status = 422
    detail = exc.detail if isinstance(exc.detail, str) else None
    if status == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    if status == 401:
        headers.update(unauthenticated_headers())
    return problem(status, None, None, detail, request.url.path, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", extra={"method": request.method, "path": request.url.path}, exc_info=exc)
    return problem(503, detail="the database is unavailable; retry shortly", instance=request.url.path,
                   headers={"Retry-After": "1"})


def _data_error(request: Request, exc: Exception) -> Response:
    """A value the database refused as data (out of range, not representable): the input's fault.

    Validation should have caught it first; this is the net under it, so such a request is a
    422, not a 500. The detail never carries the SQL or the value."""
    log.warning("database refused a value", extra={"method": request.method, "path": request.url.path,
                                                   "error": type(getattr(exc, "orig", exc)).__name__})
    return problem(422, "validation_error", None, "a value in the request is out of range or not representable",
                   request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BookingError, _booking_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UnsafeURL, _unsafe_url)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(DataError, _data_error)


class CatchAllMiddleware:
    """The last line: any exception no handler claimed becomes a bare 500 problem, logged once.

    A pure ASGI middleware rather than ``add_exception_handler(Exception, ...)``, because
    Starlette re-raises after such a handler and the traceback would be logged twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception(
                "unhandled error",
                extra={"method": scope.get("method"), "path": scope.get("path"), "client": scope.get("client")},
            )
            if started:
                raise
            response = problem(500, detail="an internal error occurred; it has been logged",
                               instance=scope.get("path"))
            await response(scope, receive, send)
