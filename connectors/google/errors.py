"""Google-specific errors, and the one place where Google's failures become calbook's classes.

The worker only understands ``TransientError`` (retry with backoff), ``AuthError`` (mark the
connection ``reauth_required``) and ``PermanentError`` (record, do not retry), so every call
into google-api-python-client or google-auth goes through :func:`translate_google_errors`.
Messages never contain tokens: they end up in ``lastError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from connectors.base import AuthError, ConnectorError, PermanentError, TransientError
from connectors.retry_after import parse_retry_after

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
"""403 reasons that mean "slow down", not "forbidden" (Calendar API error guide)."""


class GoogleOAuthError(ConnectorError):
    """The OAuth web-server flow failed; the expert should try connecting again."""


class StateMismatchError(GoogleOAuthError):
    """The ``state`` returned to the callback is not the one we issued (possible CSRF)."""


class MissingScopesError(GoogleOAuthError):
    """The expert unticked a permission calbook needs (granular consent)."""

    def __init__(self, missing: frozenset[str]) -> None:
        super().__init__("Google did not grant the required permissions: " + ", ".join(sorted(missing)))
        self.missing = missing


class GoogleRequestRejected(PermanentError):
    """A 4xx other than 401/429/rate-limit, with Google's status and reason kept for callers.

    The provider looks at ``status`` where a 4xx is an answer, not a failure: 409 on insert
    (the event exists), 412 on patch (stale etag), 404/410 on delete (already gone), 410 on
    ``events.list`` (sync token invalid: full sync).
    """

    def __init__(self, message: str, status: int, reason: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def http_error_reason(exc: HttpError) -> str | None:
    """The first ``error.errors[].reason`` (``rateLimitExceeded``, ``fullSyncRequired``...)."""
    data = _error_body(exc)
    errors = data.get("error", {}).get("errors") if isinstance(data.get("error"), dict) else None
    if errors and isinstance(errors, list) and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        return str(reason) if reason else None
    return None


def http_status(exc: HttpError) -> int:
    return int(exc.resp.status)


def classify_http_error(exc: HttpError, context: str) -> ConnectorError:
    """Map an ``HttpError`` to calbook's classes.

    403 is ambiguous at Google: with a rate-limit reason it is a "try later", otherwise a real
    refusal (no access to that calendar), which retrying will not fix.
    """
    status = http_status(exc)
    reason = http_error_reason(exc)
    message = f"{context}: Google answered {status}" + (f" ({reason})" if reason else "")
    if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return TransientError(message, retry_after=parse_retry_after(exc.resp.get("retry-after")))
    if status == 401:
        return AuthError(message)
    return GoogleRequestRejected(message, status=status, reason=reason)


def classify_refresh_error(exc: auth_exceptions.RefreshError, context: str) -> ConnectorError:
    """``invalid_grant`` (revoked, expired, password change) needs the expert to reconnect."""
    error_code = _refresh_error_code(exc)
    message = f"{context}: token refresh failed" + (f" ({error_code})" if error_code else "")
    if error_code == "invalid_grant":
        return AuthError(message)
    if getattr(exc, "retryable", False):
        return TransientError(message)
    if error_code in {"invalid_client", "unauthorized_client"}:
        # Our own client id/secret is wrong: reconnecting would not help, an operator must.
        return PermanentError(message)
    return AuthError(message)


@contextmanager
def translate_google_errors(context: str) -> Iterator[None]:
    """Run a block of Google calls and re-raise whatever fails as a ``ConnectorError``."""
    try:
        yield
    except ConnectorError:
        raise
    except HttpError as exc:
        raise classify_http_error(exc, context) from exc
    except auth_exceptions.RefreshError as exc:
        raise classify_refresh_error(exc, context) from exc
    except auth_exceptions.TransportError as exc:
        raise TransientError(f"{context}: token endpoint unreachable") from exc
    except (httplib2.HttpLib2Error, TimeoutError, ConnectionError, OSError) as exc:
        raise TransientError(f"{context}: network error ({type(exc).__name__})") from exc


def _error_body(exc: HttpError) -> dict[str, Any]:
    content = exc.content
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        data = json.loads(content or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _refresh_error_code(exc: auth_exceptions.RefreshError) -> str | None:
    for arg in exc.args[1:]:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return arg["error"]
    first = str(exc.args[0]) if exc.args else ""
    head = first.split(":", 1)[0].strip()
    return head if head and " " not in head else None
