"""The Graph HTTP client of one connection: tokens, retries, per-mailbox concurrency, error classes.

* Every request carries the access token; it is refreshed first when it expires within a
  minute, and once more after a 401. Refreshed credentials go to ``on_refreshed`` at once (the
  refresh token rotates: losing it would lose the connection).
* 429, 503 and 504 honour ``Retry-After``; they and other 5xx and network errors otherwise
  wait ``base * 2**n`` with full jitter, a few times, before a ``TransientError`` reaches the
  worker (whose own retry then takes over). A ``Retry-After`` longer than ``max_delay`` is not
  slept on here.
* Graph's limits per app and mailbox (10,000 requests in 10 minutes, 4 at once; more answer 429
  ``ApplicationThrottled``) are kept across every worker by the ``gate`` the factory hands in
  (``connectors.rate_limits``), as the client's transport: every Graph request passes it, and a
  429 pauses the mailbox for all workers. The token endpoint is not Graph and is not counted.
* Refused credentials (token refresh ``invalid_grant``, 401 after a fresh token, consent
  revoked, the mailbox gone) are ``AuthError``; other 4xx are ``GraphRejected`` with Graph's
  status and ``error.code`` kept for callers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from config.settings import Settings
from connectors.base import AuthError, PermanentError, TransientError
from connectors.microsoft import oauth
from connectors.rate_limits import UNLIMITED, RequestGate
from connectors.rate_limits.httpx_transport import GatedTransport
from connectors.retry_after import parse_retry_after

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
AUTH_CODES = frozenset({
    "InvalidAuthenticationToken", "ErrorAccessDenied", "MailboxNotEnabledForRESTAPI", "ErrorMailboxNotFound",
    "ErrorInvalidUser", "AuthenticationError", "ErrorNonExistentMailbox",
})
"""Graph error codes that mean: this grant or mailbox no longer works for calbook (reconnect)."""

class GraphRejected(PermanentError):
    """A 4xx Graph answered (not 401/429): the status and ``error.code`` stay readable."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class GraphBackoff:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return float(min(self.max_delay, self.base_delay * (2**attempt)) * self.random())


PERSON_WAITS = GraphBackoff(attempts=2, base_delay=0.2, max_delay=1.0)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code"):
        return str(error["code"])
    return None


class GraphClient:
    """Graph for one connection; one per task."""

    def __init__(
        self,
        settings: Settings,
        credentials: dict[str, Any],
        *,
        connection_id: str | None = None,
        on_refreshed: Callable[[dict[str, Any]], None] | None = None,
        backoff: GraphBackoff | None = None,
        timeout: float = 30.0,
        gate: RequestGate = UNLIMITED,
    ) -> None:
        self._settings = settings
        self._credentials = dict(credentials)
        self._on_refreshed = on_refreshed
        self._backoff = backoff or GraphBackoff()
        self._connection_id = connection_id
        self._http = httpx.Client(timeout=timeout, transport=GatedTransport(gate))
        self._root = settings.microsoft_graph_root.rstrip("/")
        self.requests = 0
        """Graph requests sent (the benchmark counts them)."""
        self.refreshed = False

    @property
    def credentials(self) -> dict[str, Any]:
        return dict(self._credentials)

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self._root + "/" + path.lstrip("/")

    # -- tokens -----------------------------------------------------------------------------

    def _token(self, force: bool = False) -> str:
        expires_at = float(self._credentials.get("expires_at") or 0)
        if force or not self._credentials.get("access_token") or expires_at < time.time() + 60:
            self._credentials = oauth.refresh(self._settings, self._credentials, self._http)
            self.refreshed = True
            log.info("microsoft credentials refreshed (connection=%s)", self._connection_id)
            if self._on_refreshed is not None:
                self._on_refreshed(dict(self._credentials))
        return str(self._credentials["access_token"])

    # -- requests ---------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None, what: str = "",
    ) -> httpx.Response:
        """One Graph call with retries; returns the 2xx (or 3xx) answer, raises calbook's errors."""
        context = f"microsoft {what or method + ' ' + path.split('?')[0][:80]}"
        refreshed_for_401 = False
        attempt = 0
        while True:
            token = self._token()
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
            try:
                self.requests += 1
                response = self._http.request(method, self.url(path), json=json, params=params, headers=sent)
            except httpx.HTTPError as exc:
                error: TransientError = TransientError(f"{context}: network error ({type(exc).__name__})")
            except TransientError as exc:  # the shared rate limit: not this request's turn for a while
                error = exc
            else:
                status = response.status_code
                if status < 400:
                    return response
                code = _error_code(response)
                message = f"{context}: Graph answered {status}" + (f" ({code})" if code else "")
                if status == 401 and not refreshed_for_401:
                    refreshed_for_401 = True
                    self._token(force=True)
                    continue
                if status == 401 or (status in (403, 404) and code in AUTH_CODES):
                    raise AuthError(message)
                if status not in RETRY_STATUSES:
                    raise GraphRejected(message, status, code)
                error = TransientError(message, retry_after=parse_retry_after(response.headers.get("Retry-After")))
            attempt += 1
            too_long = error.retry_after is not None and error.retry_after > self._backoff.max_delay
            if attempt >= self._backoff.attempts or too_long:
                raise error
            wait = self._backoff.delay(attempt - 1, error.retry_after)
            log.info("%s: transient (%s), retry %d in %.2fs", context, error, attempt, wait)
            self._backoff.sleep(wait)

    def get_json(self, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.request("GET", path, **kwargs).json()
        return answer if isinstance(answer, dict) else {}
