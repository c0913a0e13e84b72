"""The OpenAPI document: every error response is documented as a problem+json ``Problem``.

FastAPI documents a route's extra responses under the route's own media type
(``application/json``) and invents ``HTTPValidationError`` for 422s. Neither is what goes
over the wire, and schemathesis checks responses against this document, so after
generation every response of status 4xx/5xx (and a ``default`` added to each operation)
is rewritten to ``application/problem+json`` with the ``Problem`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, malformed, expired or wrongly signed bearer token (`unauthenticated`)",
    403: "Authenticated, but not allowed (`forbidden`)",
    404: "No such resource, or not visible to the caller (`not_found`)",
    409: "Conflict (`slot_unavailable`, `invalid_state`)",
    412: "Stale `If-Match` (`precondition_failed`)",
    413: "Request body too large (`payload_too_large`)",
    415: "The body is not sent as `application/json` (`unsupported_media_type`)",
    422: "Invalid request (`validation_error` or a specific booking rule code)",
    428: "`If-Match` missing (`precondition_failed`)",
    429: "Too much under way at once for this caller (`too_many_requests`, with `Retry-After`)",
    503: "A dependency is unavailable (`service_unavailable`)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document ``statuses`` as problem responses of a route or router."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Error")} for status in statuses}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def rewrite_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, response in responses.items():
                if status == "default" or status[0] in "45":
                    response["content"] = _problem_content()
            responses.setdefault("default", {"description": "Any other error", "content": _problem_content()})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, schema in Problem.model_json_schema(ref_template="#/components/schemas/{model}").get(
        "$defs", {}
    ).items():
        schemas.setdefault(name, schema)
    schemas["Problem"].pop("$defs", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
            )
            app.openapi_schema = rewrite_problem_responses(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
