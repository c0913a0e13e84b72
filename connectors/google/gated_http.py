"""``GatedHttp``: the httplib2 connection every Calendar API request goes out on, behind the
connection's ``RequestGate`` (``connectors.rate_limits``), the one choke point of the Google
provider.

google-api-python-client sends each request (pages, retries and the repeat after a token refresh
included) through ``AuthorizedHttp``, which hands it to this object; token refreshes go through
``requests`` (``credentials.refresh_transport``) and are not Calendar API requests. An answer
that says "slow down" (429, a 403 ``rateLimitExceeded``/``userRateLimitExceeded``, a 503 with
``Retry-After``) pauses the user's key for every worker before the provider's own retry sees it.
"""

from __future__ import annotations

import json
from typing import Any

import httplib2

from connectors.google.errors import RATE_LIMIT_REASONS
from connectors.rate_limits import UNLIMITED, RequestGate
from connectors.rate_limits.gate import THROTTLED
from connectors.retry_after import parse_retry_after


def _is_rate_limit_403(content: Any) -> bool:
    try:
        errors = json.loads(content or b"{}").get("error", {}).get("errors") or []
        return any(isinstance(e, dict) and e.get("reason") in RATE_LIMIT_REASONS for e in errors)
    except (ValueError, AttributeError):
        return False


class GatedHttp(httplib2.Http):
    """An ``httplib2.Http`` whose every request waits for the gate (not thread-safe, like httplib2)."""

    def __init__(self, gate: RequestGate = UNLIMITED, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def request(  # type: ignore[override]
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None,
        redirections: int = httplib2.DEFAULT_MAX_REDIRECTS, connection_type: Any = None,
    ) -> tuple[httplib2.Response, bytes]:
        with self.gate.admit(uri):
            response, content = super().request(uri, method, body, headers, redirections, connection_type)
        status = int(response.status)
        if status == 403 and _is_rate_limit_403(content):
            status = THROTTLED
        self.gate.answered(uri, status, parse_retry_after(response.get("retry-after")))
        return response, content
