"""``CalDAVProvider``: busy blocks from, and booking events to, a CalDAV account.

Pull strategy (docs/sync.md#incremental-sync), per calendar:

1. With a cursor in ``sync`` mode: one RFC 6578 sync-collection REPORT with the stored token
   (ETags only), then the changed objects in calendar-multiget batches. So an incremental
   pull costs requests in proportion to the changes, not the calendar size.
2. Any failure of that REPORT that is the token's or the report's fault (403/409/412
   expired token, 507, 500, a malformed reply...) means a full resync: an initial
   sync-collection (empty token) to a fresh, real token, then every object by multiget,
   returned as a ``full`` result. Credentials (401) and overload or outage (429, 502, 503,
   504, network trouble) are raised instead: a resync would only make those worse.
3. Servers without sync support (the initial sync-collection fails too) get ``etag`` mode:
   a ctag PROPFIND (nothing changed -> one request), else a depth-1 ETag listing compared
   with the stored map, then a multiget of what changed. We never use the caldav library's
   own fallback, which downloads everything under a fake ``fake-...`` token on every pull.

``reconcile`` is the daily safety net: a full ETag listing compared with the stored map fixes
whatever the incremental path missed (a server that lost a change in its sync log).

Push writes one resource per booking (see ``event_body``), remembers the href and ETag the
server returned, creates with ``If-None-Match: *`` and updates with ``If-Match``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin

from caldav import DAVClient
from caldav.lib import error as caldav_error

from connectors.base import (
    BookingEvent,
    BusyInterval,
    CalendarInfo,
    EventRef,
    PermanentError,
    PullResult,
    TransientError,
)
from connectors.caldav.cursor import CalDAVCursor
from connectors.caldav.errors import error_for_status, redact_url, translated
from connectors.caldav.event_body import build_event_ics, resource_name, same_event
from connectors.caldav.webdav_xml import (
    APPLE,
    CALDAV,
    CALSERVER,
    DAV,
    DavResponse,
    MultistatusError,
    href_path,
    multiget_body,
    parse_multistatus,
    propfind_body,
    sync_collection_body,
    tag,
)
from connectors.ical_expand import MalformedCalendarObject, expand_calendar, resolve_timezone

log = logging.getLogger(__name__)

#: Hrefs per calendar-multiget REPORT: big enough to keep a full sync to a few dozen requests
#: for 10,000 events, small enough that one reply stays a few MB.
MULTIGET_BATCH = 250
#: Pages of a truncated (507) sync-collection reply we follow before resyncing from scratch.
MAX_SYNC_PAGES = 50
#: Re-expand window-dependent objects once the horizon has slid this far.
HORIZON_REFRESH = timedelta(days=1)
DEFAULT_HORIZON = timedelta(days=180)
_WRITE_ATTEMPTS = 3


class SyncReportFailed(Exception):
    """The sync-collection REPORT was refused or unusable: resync from scratch."""


@dataclass(slots=True)
class _Changes:
    """What the server says changed: href -> new ETag, and removed hrefs."""

    changed: dict[str, str]
    deleted: set[str]


class CalDAVProvider:
    """One CalDAV account (``connectors.base.CalendarProvider``).

    ``url`` may be the server root, the principal or one calendar's URL. ``default_tz`` is the
    expert's IANA timezone (floating times, all-day events); ``account_addresses`` are the
    expert's e-mail addresses, to recognise the ATTENDEE line of events they declined.
    Calendar ids are the calendars' absolute URLs.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        default_tz: str,
        account_addresses: Iterable[str] = (),
        *,
        timeout: float = 30,
        auth_type: str = "basic",
        ssl_verify: bool | str = True,
    ) -> None:
        resolve_timezone(default_tz)
        self.default_tz = default_tz
        self.account_addresses = tuple(account_addresses)
        # auth_type is pinned: without it caldav sends every first request unauthenticated
        # and pays a 401 round trip to learn the scheme.
        self.client = DAVClient(
            url=url,
            username=username,
            password=password,
            auth_type=auth_type,
            timeout=int(timeout),
            ssl_verify_cert=ssl_verify,
            enable_rfc6764="://" not in url,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> CalDAVProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- discovery

    def list_calendars(self) -> list[CalendarInfo]:
        """Calendars that can hold events: all of the account's, or just the one ``url`` names."""
        base = str(self.client.url)
        here = self._propfind(base, 0, (DAV, "resourcetype"))
        if here and self._is_calendar(here[0]):
            return self._calendar_infos(base, depth=0)
        with translated("discover principal of", base):
            home = str(self.client.principal().calendar_home_set.url)
        return self._calendar_infos(home, depth=1)

    def _calendar_infos(self, url: str, depth: int) -> list[CalendarInfo]:
        props = (
            (DAV, "resourcetype"),
            (DAV, "displayname"),
            (DAV, "current-user-privilege-set"),
            (CALDAV, "supported-calendar-component-set"),
            (CALDAV, "calendar-timezone"),
            (CALDAV, "calendar-timezone-id"),
            (APPLE, "calendar-color"),
        )
        result = []
        for item in self._propfind(url, depth, *props):
            if not self._is_calendar(item) or not self._holds_events(item):
                continue
            calendar_url = urljoin(url, quote(item.href))
            name = item.text(DAV, "displayname") or item.href.rstrip("/").rsplit("/", 1)[-1]
            result.append(CalendarInfo(calendar_url, name, self._writable(item), self._timezone(item)))
        return result

    @staticmethod
    def _is_calendar(item: DavResponse) -> bool:
        resourcetype = item.props.get(tag(DAV, "resourcetype"))
        return resourcetype is not None and resourcetype.find(tag(CALDAV, "calendar")) is not None

    @staticmethod
    def _holds_events(item: DavResponse) -> bool:
        components = item.props.get(tag(CALDAV, "supported-calendar-component-set"))
        if components is None or len(components) == 0:
            return True
        return any(c.get("name", "").upper() == "VEVENT" for c in components)

    @staticmethod
    def _writable(item: DavResponse) -> bool:
        privileges = item.props.get(tag(DAV, "current-user-privilege-set"))
        if privileges is None:
            return True
        granted = {child.tag for priv in privileges for child in priv}
        return bool(granted & {tag(DAV, "all"), tag(DAV, "write"), tag(DAV, "write-content")})

    @staticmethod
    def _timezone(item: DavResponse) -> str | None:
        tz_id = item.text(CALDAV, "calendar-timezone-id")
        if tz_id:
            return tz_id
        vtimezone = item.text(CALDAV, "calendar-timezone") or ""
        for line in vtimezone.splitlines():
            if line.upper().startswith("TZID:"):
                return line[5:].strip()
        return None

    # --------------------------------------------------------------------- pull

    def pull(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime,
        window_end: datetime,
        default_tz: str | None = None,
    ) -> PullResult:
        """Busy blocks changed since ``cursor`` (a full result when there is none)."""
        tz = default_tz or self.default_tz
        state = CalDAVCursor.from_dict(cursor)
        if state is None:
            return self._full_pull(calendar_id, window_start, window_end, tz)
        if state.mode == "sync":
            try:
                token, changes = self._sync_changes(calendar_id, state.sync_token)
            except SyncReportFailed as exc:
                log.warning(
                    "caldav sync token of %s not usable (%s): full resync", redact_url(calendar_id), exc
                )
                return self._full_pull(calendar_id, window_start, window_end, tz)
            state.sync_token = token
        else:
            ctag = self._ctag(calendar_id)
            if ctag is not None and ctag == state.ctag:
                changes = _Changes({}, set())
            else:
                listing = self._etag_listing(calendar_id)
                changes = _diff(state.etags, listing)
                state.ctag = ctag
        return self._apply(calendar_id, state, changes, window_start, window_end, tz)

    def reconcile(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        default_tz: str | None = None,
    ) -> PullResult:
        """Daily check: the full ETag listing against the stored map; fixes what sync missed.

        Keeps the sync token, so the next incremental pull continues where it was. Without a
        usable cursor this is simply a full pull.
        """
        start = window_start or datetime.now(UTC)
        end = window_end or start + DEFAULT_HORIZON
        tz = default_tz or self.default_tz
        state = CalDAVCursor.from_dict(cursor)
        if state is None:
            return self._full_pull(calendar_id, start, end, tz)
        changes = _diff(state.etags, self._etag_listing(calendar_id))
        if changes.changed or changes.deleted:
            log.warning(
                "caldav reconcile of %s found %d changed and %d deleted objects missed by sync",
                redact_url(calendar_id),
                len(changes.changed),
                len(changes.deleted),
            )
        return self._apply(calendar_id, state, changes, start, end, tz)

    def _full_pull(self, calendar_id: str, start: datetime, end: datetime, tz: str) -> PullResult:
        try:
            token, changes = self._sync_changes(calendar_id, None)
            state = CalDAVCursor(mode="sync", sync_token=token)
        except SyncReportFailed as exc:
            log.info(
                "caldav server of %s cannot sync-collection (%s): using ctag/etag",
                redact_url(calendar_id),
                exc,
            )
            ctag = self._ctag(calendar_id)
            changes = _Changes(self._etag_listing(calendar_id), set())
            state = CalDAVCursor(mode="etag", ctag=ctag)
        result = self._apply(calendar_id, state, changes, start, end, tz, horizon_refresh=False)
        result.full = True
        return result

    def _apply(
        self,
        calendar_id: str,
        state: CalDAVCursor,
        changes: _Changes,
        start: datetime,
        end: datetime,
        tz: str,
        horizon_refresh: bool = True,
    ) -> PullResult:
        """Fetch the changed objects, expand them, and move the cursor forward."""
        to_fetch = set(changes.changed)
        refresh_due = (
            not horizon_refresh
            or state.expanded_until is None
            or (end - state.expanded_until >= HORIZON_REFRESH)
        )
        if horizon_refresh and refresh_due:
            to_fetch |= state.window_dependent - changes.deleted
        fetched = self._multiget(calendar_id, sorted(to_fetch))
        result = PullResult(calendar_id=calendar_id, full=False)
        deleted = set(changes.deleted)
        for href in to_fetch:
            if href not in fetched:  # listed as changed but gone by the time we asked: deleted
                deleted.add(href)
        for href, (etag, data) in fetched.items():
            intervals, dependent = self._expand(href, data, start, end, tz, result.warnings)
            result.upserts[href] = intervals
            state.etags[href] = etag or changes.changed.get(href) or state.etags.get(href, "")
            if dependent:
                state.window_dependent.add(href)
            else:
                state.window_dependent.discard(href)
        for href in deleted:
            state.etags.pop(href, None)
            state.window_dependent.discard(href)
        result.deleted = deleted - set(fetched)
        if refresh_due:
            state.expanded_until = end
        result.cursor = state.to_dict()
        log.info(
            "caldav pull of %s: %d upserted, %d deleted, %d warnings",
            redact_url(calendar_id),
            len(result.upserts),
            len(result.deleted),
            len(result.warnings),
        )
        return result

    def _expand(
        self, href: str, data: str, start: datetime, end: datetime, tz: str, warnings: list[str]
    ) -> tuple[list[BusyInterval], bool]:
        try:
            expansion = expand_calendar(data, start, end, tz, self.account_addresses, href)
        except MalformedCalendarObject as exc:
            log.warning("caldav object skipped: %s", exc)
            warnings.append(str(exc))
            return [], False
        return expansion.intervals, expansion.window_dependent

    # ------------------------------------------------------------ sync / listing

    def _sync_changes(self, calendar_id: str, token: str | None) -> tuple[str, _Changes]:
        """Follow sync-collection (and its 507 truncation pages) from ``token``."""
        collection = href_path(calendar_id).rstrip("/")
        changes = _Changes({}, set())
        current = token
        for _page in range(MAX_SYNC_PAGES):
            with translated("sync-collection", calendar_id):
                try:
                    response = self.client.report(calendar_id, sync_collection_body(current), depth=1)
                except caldav_error.AuthorizationError as exc:
                    if exc.status == 403:
                        raise SyncReportFailed(f"HTTP 403 {exc.preconditions or ''}".strip()) from exc
                    raise
                if response.status != 207:
                    self._raise_unless_resyncable(response, "sync-collection", calendar_id)
                    raise SyncReportFailed(f"HTTP {response.status}")
                try:
                    reply = parse_multistatus(response._raw or b"")
                except MultistatusError as exc:
                    raise SyncReportFailed(str(exc)) from exc
            if not reply.sync_token:
                raise SyncReportFailed("reply without a sync-token")
            truncated = False
            for item in reply.responses:
                if item.href.rstrip("/") == collection:
                    truncated = truncated or item.status == 507
                    continue
                etag = item.text(DAV, "getetag")
                if item.status == 404 or (etag is None and item.status not in (None, 200)):
                    changes.deleted.add(item.href)
                    changes.changed.pop(item.href, None)
                elif etag is not None:
                    changes.changed[item.href] = etag
                    changes.deleted.discard(item.href)
            if not truncated:
                return reply.sync_token, changes
            if reply.sync_token == current:
                raise SyncReportFailed("truncated reply without progress")
            current = reply.sync_token
        raise SyncReportFailed(f"still truncated after {MAX_SYNC_PAGES} pages")

    def _raise_unless_resyncable(self, response: Any, action: str, url: str) -> None:
        """Overload and outage are not the token's fault: raise those instead of resyncing."""
        status = response.status
        if status in (429, 502, 503, 504) or status == 401:
            raise error_for_status(status, action, url, response.headers.get("Retry-After"))

    def _ctag(self, calendar_id: str) -> str | None:
        found = self._propfind(calendar_id, 0, (CALSERVER, "getctag"), (DAV, "sync-token"))
        if not found:
            return None
        return found[0].text(CALSERVER, "getctag") or found[0].text(DAV, "sync-token")

    def _etag_listing(self, calendar_id: str) -> dict[str, str]:
        """Every object of the calendar with its ETag (one depth-1 PROPFIND)."""
        collection = href_path(calendar_id).rstrip("/")
        listing = {}
        for item in self._propfind(calendar_id, 1, (DAV, "getetag"), (DAV, "resourcetype")):
            if item.href.rstrip("/") == collection:
                continue
            resourcetype = item.props.get(tag(DAV, "resourcetype"))
            if resourcetype is not None and resourcetype.find(tag(DAV, "collection")) is not None:
                continue
            etag = item.text(DAV, "getetag")
            if etag:
                listing[item.href] = etag
        return listing

    def _propfind(self, url: str, depth: int, *props: tuple[str, str]) -> list[DavResponse]:
        with translated("PROPFIND", url):
            response = self.client.propfind(url, propfind_body(*props), depth=depth)
            if response.status != 207:
                raise error_for_status(response.status, "PROPFIND", url, response.headers.get("Retry-After"))
            return parse_multistatus(response._raw or b"").responses

    def _multiget(self, calendar_id: str, hrefs: Sequence[str]) -> dict[str, tuple[str | None, str]]:
        """href -> (ETag, iCalendar text) for those of ``hrefs`` that still exist."""
        found: dict[str, tuple[str | None, str]] = {}
        for offset in range(0, len(hrefs), MULTIGET_BATCH):
            batch = list(hrefs[offset : offset + MULTIGET_BATCH])
            with translated("calendar-multiget", calendar_id):
                response = self.client.report(calendar_id, multiget_body(batch), depth=None)
                if response.status != 207:
                    raise error_for_status(
                        response.status, "calendar-multiget", calendar_id, response.headers.get("Retry-After")
                    )
                for item in parse_multistatus(response._raw or b"").responses:
                    data = item.text(CALDAV, "calendar-data")
                    if item.status in (None, 200) and data:
                        found[item.href] = (item.text(DAV, "getetag"), data)
        return found

    # --------------------------------------------------------------------- push

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef:
        """Create or update the booking's event; idempotent under retries and duplicates.

        ``existing`` (the ref returned by the previous write) addresses the event; a ref into
        another calendar (the destination changed) is ignored here - the caller deletes that
        one with ``delete_event``.
        """
        if existing is not None and existing.calendar_id != calendar_id:
            existing = None
        url = self._event_url(calendar_id, event.booking_id, existing)
        body = build_event_ics(event)
        etag = existing.etag if existing else None
        for _attempt in range(_WRITE_ATTEMPTS):
            if etag is None:
                response = self._put(url, body, {"If-None-Match": "*"})
                if response.status in (200, 201, 204):
                    return self._ref(calendar_id, url, response)
                if response.status != 412:
                    raise error_for_status(response.status, "PUT", url, response.headers.get("Retry-After"))
                # Already there: a retry or duplicate of an earlier create, or an older version.
            else:
                response = self._put(url, body, {"If-Match": etag})
                if response.status in (200, 201, 204):
                    return self._ref(calendar_id, url, response)
                if response.status == 404:
                    etag = None  # deleted on the server meanwhile: create it again
                    continue
                if response.status != 412:
                    raise error_for_status(response.status, "PUT", url, response.headers.get("Retry-After"))
            current = self._get(url)
            if current is None:
                etag = None
                continue
            current_etag, current_body = current
            if same_event(current_body, body):
                return EventRef(calendar_id, href_path(url), current_etag)
            etag = current_etag  # re-apply our version over the one we just read
            if etag is None:
                raise PermanentError(f"PUT {redact_url(url)}: server gives no ETag to update against")
        raise TransientError(f"PUT {redact_url(url)}: event kept changing under us (412)")

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None:
        """Delete the booking's event where ``existing`` says it lives; a missing one is fine."""
        url = self._event_url(calendar_id, booking_id, existing)
        with translated("DELETE", url):
            response = self.client.delete(url)
        if response.status in (200, 204, 404, 410):
            return
        raise error_for_status(response.status, "DELETE", url, response.headers.get("Retry-After"))

    def _event_url(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> str:
        if existing is not None and existing.calendar_id:
            calendar_id = existing.calendar_id
        base = calendar_id if calendar_id.endswith("/") else calendar_id + "/"
        if existing is not None and existing.ref:
            return urljoin(base, quote(existing.ref))
        return urljoin(base, quote(resource_name(booking_id)))

    def _put(self, url: str, body: str, headers: dict[str, str]) -> Any:
        with translated("PUT", url):
            return self.client.put(url, body, {"Content-Type": "text/calendar; charset=utf-8", **headers})

    def _get(self, url: str) -> tuple[str | None, str] | None:
        with translated("GET", url):
            response = self.client.request(url, "GET", "", {"Accept": "text/calendar"})
        if response.status in (404, 410):
            return None
        if response.status != 200:
            raise error_for_status(response.status, "GET", url, response.headers.get("Retry-After"))
        raw = response._raw or b""
        return response.headers.get("ETag"), raw.decode("utf-8") if isinstance(raw, bytes) else raw

    def _ref(self, calendar_id: str, url: str, response: Any) -> EventRef:
        """The href and ETag of what we just wrote.

        A server that changed the data on store (or does scheduling and answers with a
        Schedule-Tag) may send no ETag; then we ask for it, so the next update can still
        carry an ``If-Match``.
        """
        location = response.headers.get("Location")
        target = urljoin(url, location) if location else url
        etag = response.headers.get("ETag")
        if not etag:
            found = self._propfind(target, 0, (DAV, "getetag"))
            etag = found[0].text(DAV, "getetag") if found else None
        return EventRef(calendar_id, href_path(target), etag)


def _diff(stored: dict[str, str], listing: dict[str, str]) -> _Changes:
    changed = {href: etag for href, etag in listing.items() if stored.get(href) != etag}
    return _Changes(changed, set(stored) - set(listing))
