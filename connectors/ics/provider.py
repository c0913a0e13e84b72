"""``ICSFeedProvider``: busy blocks from a read-only iCalendar feed fetched over HTTP(S).

A feed has no sync protocol, so each pull is a conditional GET (``If-None-Match`` /
``If-Modified-Since`` from the cursor). 304, or a 200 whose body hashes the same as last time,
means nothing changed: an empty, non-full result. Anything else is parsed in full and returned
as a ``full`` result keyed by event UID; a body of several VCALENDAR objects (RFC 5545 3.4, as
concatenating feeds produce) is read whole, as one calendar (``ical_expand.parse_calendar``).
When the horizon has slid by a day the feed is fetched unconditionally, because recurring
events must be expanded again. Bodies are capped (``max_bytes``) and requests time out, so a
hostile or broken feed cannot tie a worker up.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from config.logging import MASK, redact_url
from connectors.base import (
    AuthError,
    BookingEvent,
    CalendarInfo,
    CalendarProvider,
    EventRef,
    PermanentError,
    PullResult,
    TransientError,
)
from connectors.ical_expand import (
    MalformedCalendarObject,
    expand_calendar,
    parse_calendar,
    resolve_timezone,
    split_by_uid,
)
from connectors.rate_limits import UNLIMITED, RequestGate
from connectors.rate_limits.httpx_transport import GatedTransport
from connectors.retry_after import parse_retry_after

log = logging.getLogger(__name__)

#: The calendar id of every feed: opaque on purpose. The feed URL often is the secret (a
#: private token in its path or query); it lives encrypted in the connection's credentials,
#: never in busy blocks, sync state or logs (docs/security.md#secrets-at-rest).
FEED_CALENDAR_ID = "feed"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 20.0
HORIZON_REFRESH = timedelta(days=1)
CURSOR_VERSION = 1


def feed_url(url: str) -> str:
    """``webcal://`` is https in disguise; anything but http(s) is refused."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals"):
        scheme = "https"
    if scheme not in ("http", "https") or not parts.netloc:
        raise PermanentError(f"not an http(s) feed URL: {_redact(url)}")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def _redact(url: str) -> str:
    """The URL without userinfo, query or token-like path segments (feed URLs often carry a secret
    token in any of them): what errors, ``lastError`` and logs may show."""
    return redact_url(url)


class ICSFeedProvider(CalendarProvider):
    """One feed = one read-only calendar, ``FEED_CALENDAR_ID``; the URL is the provider's own."""

    def __init__(
        self,
        url: str,
        default_tz: str,
        account_addresses: tuple[str, ...] | list[str] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        client: httpx.Client | None = None,
        url_guard: Callable[[str], None] | None = None,
        gate: RequestGate = UNLIMITED,
    ) -> None:
        """``url_guard`` is called with every URL the feed client requests, redirects included,
        and may raise to refuse one (the SSRF policy of ``connectors.url_policy``): checking only
        the first URL would let a public feed redirect to a private address. ``gate`` holds the
        shared per-host rate limits (``connectors.rate_limits``), as the client's transport, so
        each redirect hop waits for its own host's turn."""
        resolve_timezone(default_tz)
        self.url = feed_url(url)
        self.default_tz = default_tz
        self.account_addresses = tuple(account_addresses)
        self.max_bytes = max_bytes
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": "calbook-ics/1", "Accept": "text/calendar, */*;q=0.5"},
            event_hooks={"request": [lambda request: url_guard(str(request.url))]} if url_guard else None,
            transport=GatedTransport(gate),
        )

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def list_calendars(self) -> list[CalendarInfo]:
        last = urlsplit(redact_url(self.url)).path.rstrip("/").rsplit("/", 1)[-1]
        name = last if last and last != MASK else (urlsplit(self.url).hostname or "feed")
        return [CalendarInfo(id=FEED_CALENDAR_ID, name=name, writable=False)]

    def pull(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime,
        window_end: datetime,
        default_tz: str | None = None,
    ) -> PullResult:
        if calendar_id != FEED_CALENDAR_ID and feed_url(calendar_id) != self.url:
            raise PermanentError("an ICS connection has one calendar, its feed")
        url = self.url
        state = cursor if cursor and cursor.get("v") == CURSOR_VERSION else {}
        until = state.get("expanded_until")
        refresh = until is None or window_end - datetime.fromisoformat(until) >= HORIZON_REFRESH
        headers = {}
        if not refresh:
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        status, response_headers, body = self._get(url, headers)
        if status == 304:
            return PullResult(calendar_id=calendar_id, full=False, cursor=dict(state))
        digest = hashlib.sha256(body).hexdigest()
        new_state = {
            "v": CURSOR_VERSION,
            "etag": response_headers.get("ETag"),
            "last_modified": response_headers.get("Last-Modified"),
            "sha256": digest,
            "expanded_until": window_end.isoformat() if refresh else until,
        }
        if not refresh and digest == state.get("sha256"):
            return PullResult(calendar_id=calendar_id, full=False, cursor=new_state)
        result = self._expand(calendar_id, url, body, window_start, window_end, default_tz or self.default_tz)
        new_state["expanded_until"] = window_end.isoformat()
        result.cursor = new_state
        return result

    def _expand(
        self, calendar_id: str, url: str, body: bytes, start: datetime, end: datetime, tz: str
    ) -> PullResult:
        try:
            calendar = parse_calendar(body, _redact(url))
        except MalformedCalendarObject as exc:
            raise PermanentError(f"feed {_redact(url)} is not an iCalendar file") from exc
        result = PullResult(calendar_id=calendar_id, full=True)
        for uid, part in split_by_uid(calendar).items():
            object_id = f"{_redact(url)}#{uid}"
            try:
                expansion = expand_calendar(part, start, end, tz, self.account_addresses, object_id)
            except MalformedCalendarObject as exc:
                log.warning("ics feed event skipped: %s", exc)
                result.warnings.append(str(exc))
                continue
            result.upserts[uid] = expansion.intervals
            result.warnings.extend(expansion.warnings)
        log.info(
            "ics pull of %s: %d events, %d warnings", _redact(url), len(result.upserts), len(result.warnings)
        )
        return result

    def _get(self, url: str, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
        where = f"GET {_redact(url)}"
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return status, response.headers, b""
                if status != 200:
                    raise _error_for_status(status, where, response.headers.get("Retry-After"))
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise PermanentError(f"{where}: feed larger than {self.max_bytes} bytes")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PermanentError(f"{where}: feed larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
                return status, response.headers, b"".join(chunks)
        except httpx.TooManyRedirects as exc:
            raise PermanentError(f"{where}: too many redirects") from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where}: timed out") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise TransientError(f"{where}: network error ({type(exc).__name__})") from exc
        except httpx.InvalidURL as exc:
            raise PermanentError(f"{where}: invalid URL") from exc

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef:
        raise PermanentError("an ICS feed is read-only; choose a CalDAV or Google calendar as destination")

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None:
        raise PermanentError("an ICS feed is read-only; choose a CalDAV or Google calendar as destination")


def _error_for_status(status: int, where: str, retry_after: str | None) -> Exception:
    if status in (401, 403):
        return AuthError(f"{where}: HTTP {status}")
    if status in (408, 425, 429) or status >= 500:
        return TransientError(f"{where}: HTTP {status}", retry_after=parse_retry_after(retry_after))
    return PermanentError(f"{where}: HTTP {status}")
