"""``CalDAVProvider``: busy blocks from, and booking events to, a CalDAV account.

Pull strategy (docs/sync.md#incremental-sync), per calendar:

1. With a cursor in ``sync`` mode: the collection's ctag first (one PROPFIND; unchanged means
   nothing to do), else one RFC 6578 sync-collection REPORT from the stored token (ETags
   only), then the changed objects in calendar-multiget batches. An incremental pull costs
   requests in proportion to the changes, not the calendar size.
2. A token the server refuses (403/409/412 ``valid-sync-token``, 507, 500, a malformed
   reply...) means a relisting: an initial sync-collection to a fresh token, its listing
   compared with the stored ETags, and only what differs fetched. Credentials (401) and
   overload or outage (429, 502, 503, 504, network trouble) are raised instead.
3. Some servers do not refuse a token they cannot honour. DAViCal answers an unknown token
   with 207 and a listing of everything (no deletions in it); SabreDAV echoes a token "from
   the future" (after a restore) with no changes. Both are caught where they can be: a reply
   that reports objects whose ETag did not change is a full listing, and a reply that echoes
   the token with no changes although the ctag moved is a token not honoured; either way the
   calendar is relisted as in 2. What cannot be seen (a server with neither ctag nor an
   honest token) is caught by the daily ``reconcile``, which relists every calendar: the
   worst case is a missed change that lives until the next reconcile, 24 hours later.
4. Servers without sync support (the initial sync-collection fails too) get ``etag`` mode:
   the ctag (unchanged -> one request), else a depth-1 ETag listing compared with the stored
   map, then a multiget of what changed.

Hrefs (``webdav_xml``): compared and stored in one normal form (the decoded path), sent back
in the server's own spelling. A per-href error in a multiget is never a deletion: the object
keeps its stored blocks and is asked for again next time; only a 404/410 for that href, or
its absence from a listing, removes it.

Push writes one resource per booking (``event_body``), remembers the href and ETag the server
returned, creates with ``If-None-Match: *`` and updates with ``If-Match``. The booking's event
exists once in the account: if it is no longer where calbook put it (the expert's client
moved it to another calendar), it is found by UID - from a UID-conflict precondition's href,
or a calendar-query in each calendar of the account - and updated there, with the same UID
and a higher SEQUENCE; only when it is nowhere is it created again. A write the server still
refuses is an ``EventRejected`` for that booking, not a broken connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from connectors.base import (
    BookingEvent,
    BusyInterval,
    CalendarInfo,
    CalendarProvider,
    ConnectorError,
    EventRef,
    EventRejected,
    PermanentError,
    PullResult,
    Reconciler,
    TransientError,
)
from connectors.caldav import operations as dav
from connectors.caldav.cursor import CalDAVCursor
from connectors.caldav.errors import error_for_status, redact_url, uid_conflict
from connectors.caldav.event_body import build_event_ics, resource_name, same_event, sequence_over
from connectors.caldav.http import DavReply, DavSession
from connectors.caldav.webdav_xml import (
    APPLE,
    CALDAV,
    DAV,
    DavResponse,
    encoded_path,
    href_path,
    tag,
)
from connectors.ical_expand import MalformedCalendarObject, booking_uid, expand_calendar, resolve_timezone
from connectors.rate_limits import UNLIMITED, RequestGate
from connectors.url_policy import Allowance, URLPolicy

log = logging.getLogger(__name__)

#: Re-expand window-dependent objects once the horizon has slid this far.
HORIZON_REFRESH = timedelta(days=1)
DEFAULT_HORIZON = timedelta(days=180)
_WRITE_ATTEMPTS = 3
_OK = (200, 201, 204)


@dataclass(slots=True)
class _Found:
    """Where the booking's event turned out to live."""

    url: str
    etag: str | None
    body: str


class CalDAVProvider(CalendarProvider):
    """One CalDAV account (``connectors.base.CalendarProvider``).

    ``url`` may be the server root, the principal or one calendar's URL. ``default_tz`` is the
    expert's IANA timezone (floating times, all-day events); ``account_addresses`` are the
    expert's e-mail addresses, to recognise the ATTENDEE line of events they declined.
    Calendar ids are the calendars' absolute URLs. ``url_policy`` (the
    ``CALBOOK_ALLOW_PRIVATE_URLS`` setting) is applied to every connection; ``deadline``
    bounds everything the provider does, in seconds (the API's verification), ``timeout``
    each network operation. ``gate`` holds the shared per-host rate limits (``connectors.rate_limits``).
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        default_tz: str,
        account_addresses: Iterable[str] = (),
        *,
        url_policy: Allowance | URLPolicy,
        timeout: float = 30,
        deadline: float | None = None,
        max_redirects: int = 3,
        ssl_verify: bool | str = True,
        gate: RequestGate = UNLIMITED,
    ) -> None:
        resolve_timezone(default_tz)
        self.default_tz = default_tz
        self.account_addresses = tuple(account_addresses)
        self.url = url.strip()
        self.http = DavSession(
            self.url, username, password, policy=URLPolicy.of(url_policy), timeout=timeout, deadline=deadline,
            max_redirects=max_redirects, verify=ssl_verify, gate=gate,
        )

    def close(self) -> None:
        self.http.close()

    def reconciler(self) -> Reconciler:
        return self

    # ---------------------------------------------------------------- discovery

    def list_calendars(self) -> list[CalendarInfo]:
        """Calendars that can hold events: all of the account's, or just the one ``url`` names.

        Discovery follows the server's own pointers (``current-user-principal``,
        ``calendar-home-set``, ``/.well-known/caldav`` from a bare host), each one checked by
        the session before it is requested (``DavSession.admit``).
        """
        found, answered = dav.propfind(
            self.http, self.url, 0, (DAV, "resourcetype"), (DAV, "current-user-principal"),
            (CALDAV, "calendar-home-set"),
        )
        here = found[0] if found else None
        if here is not None and self._is_calendar(here):
            return self._calendar_infos(self.url, depth=0)
        return self._calendar_infos(self._home(here, answered), depth=1)

    def _home(self, here: DavResponse | None, answered: str) -> str:
        home = self._href_prop(here, CALDAV, "calendar-home-set", answered)
        if home:
            return home
        principal = self._href_prop(here, DAV, "current-user-principal", answered)
        if principal is None and urlsplit(self.url).path in ("", "/"):
            found, answered = dav.propfind(
                self.http, urljoin(self.url, "/.well-known/caldav"), 0, (DAV, "current-user-principal")
            )
            principal = self._href_prop(found[0] if found else None, DAV, "current-user-principal", answered)
        if principal is None:
            raise PermanentError(f"{redact_url(self.url)}: the server names no principal (current-user-principal)")
        found, answered = dav.propfind(self.http, principal, 0, (CALDAV, "calendar-home-set"))
        home = self._href_prop(found[0] if found else None, CALDAV, "calendar-home-set", answered)
        if home is None:
            raise PermanentError(f"{redact_url(principal)}: the principal names no calendar-home-set")
        return home

    def _href_prop(self, item: DavResponse | None, namespace: str, name: str, answered: str) -> str | None:
        element = item.props.get(tag(namespace, name)) if item is not None else None
        href = element.find(tag(DAV, "href")) if element is not None else None
        if href is None or not (href.text or "").strip():
            return None
        return self.http.admit(urljoin(answered, href.text.strip()), name)

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
        found, answered = dav.propfind(self.http, url, depth, *props)
        for item in found:
            if not self._is_calendar(item) or not self._holds_events(item):
                continue
            calendar_url = urljoin(answered, encoded_path(item.href))
            if not self.http.allows(calendar_url):
                log.warning("caldav calendar on another host skipped: %s", redact_url(calendar_url))
                continue
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
            return self._first_pull(calendar_id, window_start, window_end, tz)
        ctag = dav.ctag(self.http, calendar_id)
        if ctag is not None and ctag == state.ctag:
            changes = dav.Changes()  # nothing changed on the server
        elif state.mode == "sync":
            try:
                token, changes = dav.sync_changes(self.http, calendar_id, state.sync_token)
            except dav.SyncReportFailed as exc:
                log.warning("caldav sync token of %s not usable (%s): relisting", redact_url(calendar_id), exc)
                return self._relist(calendar_id, state, ctag, window_start, window_end, tz)
            doubt = self._token_not_honoured(state, token, changes, ctag)
            if doubt:
                log.warning("caldav server of %s did not honour the sync token (%s): relisting",
                            redact_url(calendar_id), doubt)
                return self._relist(calendar_id, state, ctag, window_start, window_end, tz)
            state.sync_token = token
        else:
            changes = _diff(state.etags, dav.etag_listing(self.http, calendar_id))
        state.ctag = ctag
        return self._apply(calendar_id, state, changes, window_start, window_end, tz)

    @staticmethod
    def _token_not_honoured(state: CalDAVCursor, token: str, changes: dav.Changes, ctag: str | None) -> str | None:
        """Why this sync answer cannot be trusted, if it cannot (see the module docstring, 3)."""
        unchanged = [key for key, etag in changes.changed.items() if state.etags.get(key) == etag]
        if unchanged:
            return f"{len(unchanged)} unchanged objects reported: a full listing"
        nothing = not changes.changed and not changes.deleted
        if nothing and token == state.sync_token and ctag is not None and state.ctag is not None:
            return "no changes although the ctag changed"
        return None

    def reconcile(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        default_tz: str | None = None,
    ) -> PullResult:
        """Daily safety net: the whole listing against the stored ETags, and a fresh sync token.

        Fixes whatever the incremental path missed (a server that lost a change in its sync
        log, or answered a token it could not honour in a way ``pull`` cannot see). Without a
        usable cursor this is simply a full pull.
        """
        start = window_start or datetime.now(UTC)
        end = window_end or start + DEFAULT_HORIZON
        tz = default_tz or self.default_tz
        state = CalDAVCursor.from_dict(cursor)
        if state is None:
            return self._first_pull(calendar_id, start, end, tz)
        return self._relist(calendar_id, state, dav.ctag(self.http, calendar_id), start, end, tz, reconciling=True)

    def _first_pull(self, calendar_id: str, start: datetime, end: datetime, tz: str) -> PullResult:
        """No cursor: everything, as a ``full`` result, and the mode this server supports."""
        ctag = dav.ctag(self.http, calendar_id)
        try:
            token, changes = dav.sync_changes(self.http, calendar_id, None)
            state = CalDAVCursor(mode="sync", sync_token=token, ctag=ctag)
        except dav.SyncReportFailed as exc:
            log.info("caldav server of %s cannot sync-collection (%s): using ctag/etag", redact_url(calendar_id), exc)
            changes = dav.etag_listing(self.http, calendar_id)
            state = CalDAVCursor(mode="etag", ctag=ctag)
        return self._apply(calendar_id, state, changes, start, end, tz, full=True)

    def _relist(
        self, calendar_id: str, state: CalDAVCursor, ctag: str | None, start: datetime, end: datetime, tz: str,
        *, reconciling: bool = False,
    ) -> PullResult:
        """The whole listing compared with the stored ETags; a fresh token where the server syncs."""
        try:
            token, listing = dav.sync_changes(self.http, calendar_id, None)
            state.mode, state.sync_token = "sync", token
        except dav.SyncReportFailed:
            listing = dav.etag_listing(self.http, calendar_id)
            state.mode, state.sync_token = "etag", None
        changes = _diff(state.etags, listing)
        if reconciling and (changes.changed or changes.deleted):
            log.warning(
                "caldav reconcile of %s found %d changed and %d deleted objects missed by sync",
                redact_url(calendar_id), len(changes.changed), len(changes.deleted),
            )
        state.ctag = ctag
        return self._apply(calendar_id, state, changes, start, end, tz)

    def _apply(
        self,
        calendar_id: str,
        state: CalDAVCursor,
        changes: dav.Changes,
        start: datetime,
        end: datetime,
        tz: str,
        *,
        full: bool = False,
    ) -> PullResult:
        """Fetch the changed objects (and those to retry or re-expand), expand them, move the cursor."""
        for key, raw in changes.raw.items():
            if raw and raw != key:
                state.raw[key] = raw
        refresh_due = full or state.expanded_until is None or end - state.expanded_until >= HORIZON_REFRESH
        to_fetch = set(changes.changed) | (state.refetch - changes.deleted)
        if refresh_due and not full:
            to_fetch |= state.window_dependent - changes.deleted
        fetched = dav.multiget(self.http, calendar_id, sorted(to_fetch), state.raw)
        result = PullResult(calendar_id=calendar_id, full=full)
        for key, (etag, data) in fetched.found.items():
            intervals, dependent = self._expand(key, data, start, end, tz, result.warnings)
            result.upserts[key] = intervals
            state.etags[key] = etag or changes.changed.get(key) or state.etags.get(key, "")
            state.refetch.discard(key)
            if dependent:
                state.window_dependent.add(key)
            else:
                state.window_dependent.discard(key)
        gone = {key for key in fetched.gone if self._spelt_by_server(state, key)}
        deleted = (changes.deleted | gone) - set(fetched.found)
        for key in deleted:
            state.forget(key)
        for key in sorted(to_fetch - set(fetched.found) - deleted):
            # Not answered with data, and not reliably gone: keep what is stored, ask again next time.
            state.refetch.add(key)
            result.kept.add(key)
            result.warnings.append(f"caldav object {key} could not be fetched; kept as it was, retried next sync")
        result.deleted = deleted
        if refresh_due:
            state.expanded_until = end
        result.cursor = state.to_dict()
        log.info(
            "caldav pull of %s: %d upserted, %d deleted, %d kept, %d warnings",
            redact_url(calendar_id), len(result.upserts), len(result.deleted), len(result.kept), len(result.warnings),
        )
        return result

    @staticmethod
    def _spelt_by_server(state: CalDAVCursor, key: str) -> bool:
        """Did we ask for ``key`` in the server's own spelling? Only then is its 404 a deletion."""
        return key in state.raw or encoded_path(key) == key

    def _expand(
        self, href: str, data: str, start: datetime, end: datetime, tz: str, warnings: list[str]
    ) -> tuple[list[BusyInterval], bool]:
        try:
            expansion = expand_calendar(data, start, end, tz, self.account_addresses, href)
        except MalformedCalendarObject as exc:
            log.warning("caldav object skipped: %s", exc)
            warnings.append(str(exc))
            return [], False
        warnings.extend(expansion.warnings)
        return expansion.intervals, expansion.window_dependent

    # --------------------------------------------------------------------- push

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef:
        """Create or update the booking's event; idempotent under retries and duplicates.

        ``existing`` (the ref returned by the previous write) addresses the event; a ref into
        another destination calendar (the destination changed) is ignored here - the caller
        deletes that one with ``delete_event``.
        """
        if existing is not None and existing.calendar_id != calendar_id:
            existing = None
        url = self._event_url(calendar_id, event.booking_id, existing)
        etag = existing.etag if existing else None
        searched = False
        for _attempt in range(_WRITE_ATTEMPTS):
            body = build_event_ics(event)
            reply = dav.put(self.http, url, body, {"If-Match": etag} if etag else {"If-None-Match": "*"})
            if reply.status in _OK:
                return self._ref(calendar_id, url, reply)
            clash = self._uid_clash(url, reply)
            if clash is not None:
                return self._update_found(calendar_id, clash, event)
            if reply.status not in (404, 412):
                raise error_for_status(reply.status, "PUT", url, reply.retry_after, reply.body, event_write=True)
            if reply.status == 404 and etag is None:
                raise error_for_status(reply.status, "PUT", url, reply.retry_after, reply.body)
            # 412 (or 404 on an update): the resource is not what our precondition said. Look.
            current = dav.get(self.http, url)
            if current is None:
                if existing is not None and not searched:
                    searched = True  # it was there once: the expert's client may have moved it
                    moved = self._find_elsewhere(event.booking_id, url)
                    if moved is not None:
                        return self._update_found(calendar_id, moved, event)
                etag = None
                continue
            current_etag, current_body = current
            if same_event(current_body, body):
                return EventRef(calendar_id, href_path(url), current_etag)
            if current_etag is None:
                raise EventRejected(f"PUT {redact_url(url)}: the server gives no ETag to update against")
            etag = current_etag  # re-apply our version over the one we just read, SEQUENCE above it
            event = replace(event, sequence=sequence_over(current_body, event.sequence))
        raise TransientError(f"PUT {redact_url(url)}: event kept changing under us (412)")

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None:
        """Delete the booking's event wherever it lives in the account; a missing one is fine.

        If it is not where ``existing`` says (the expert's client moved it), it is looked up
        by UID in the account's calendars and deleted there.
        """
        url = self._event_url(calendar_id, booking_id, existing)
        if dav.delete(self.http, url) or existing is None:
            return
        moved = self._find_elsewhere(booking_id, url)
        if moved is not None:
            dav.delete(self.http, moved.url)
            log.info("caldav event deleted where the expert had moved it: %s", redact_url(moved.url))

    def _uid_clash(self, url: str, reply: DavReply) -> _Found | None:
        """A create refused because the UID lives elsewhere in the account: that resource, read."""
        condition = uid_conflict(reply.status, reply.body)
        if condition is None:
            return None
        hrefs = [href_path(href) for href in condition.hrefs]
        return self._first_readable(url, [urljoin(url, encoded_path(key)) for key in hrefs])

    def _find_elsewhere(self, booking_id: str, missing_url: str) -> _Found | None:
        """The booking's event in any calendar of the account other than at ``missing_url``, by UID."""
        uid = booking_uid(booking_id)
        for calendar_url in self._account_calendars(missing_url):
            try:
                keys = dav.find_uid(self.http, calendar_url, uid)
            except (PermanentError, TransientError) as exc:
                log.info("caldav UID search skipped a calendar: %s", exc)
                continue
            found = self._first_readable(missing_url, [urljoin(calendar_url, encoded_path(key)) for key in keys])
            if found is not None:
                return found
        return None

    def _first_readable(self, missing_url: str, candidates: list[str]) -> _Found | None:
        """The first of ``candidates`` (not ``missing_url``, on the account's hosts) that exists, read."""
        for target in candidates:
            if href_path(target) == href_path(missing_url) or not self.http.allows(target):
                continue
            current = dav.get(self.http, target)
            if current is not None:
                log.info("caldav event found by its UID elsewhere in the account: %s", redact_url(target))
                return _Found(target, current[0], current[1])
        return None

    def _account_calendars(self, near: str) -> list[str]:
        """The account's calendars: discovery from ``url``, or the siblings of a single calendar URL."""
        try:
            calendars = [c.id for c in self.list_calendars()]
        except ConnectorError as exc:
            log.info("caldav calendars not listed for the UID search: %s", exc)
            calendars = []
        if len(calendars) <= 1:
            parent = urljoin(near, "..")
            try:
                calendars += [c.id for c in self._calendar_infos(parent, depth=1)]
            except ConnectorError:
                pass
        return list(dict.fromkeys(calendars))

    def _update_found(self, calendar_id: str, found: _Found, event: BookingEvent) -> EventRef:
        """Bring the event where it was found up to date: same UID, SEQUENCE above what it has."""
        body = build_event_ics(event)
        if same_event(found.body, body):
            return EventRef(calendar_id, href_path(found.url), found.etag)
        event = replace(event, sequence=sequence_over(found.body, event.sequence))
        headers = {"If-Match": found.etag} if found.etag else {}
        reply = dav.put(self.http, found.url, build_event_ics(event), headers)
        if reply.status in _OK:
            log.info("caldav event updated where the expert keeps it: %s", redact_url(found.url))
            return self._ref(calendar_id, found.url, reply)
        if reply.status == 412:
            raise TransientError(f"PUT {redact_url(found.url)}: event changed under us (412)")
        raise error_for_status(reply.status, "PUT", found.url, reply.retry_after, reply.body, event_write=True)

    def _event_url(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> str:
        if existing is not None and existing.calendar_id:
            calendar_id = existing.calendar_id
        base = calendar_id if calendar_id.endswith("/") else calendar_id + "/"
        if existing is not None and existing.ref:
            return urljoin(base, encoded_path(existing.ref))
        return urljoin(base, encoded_path(resource_name(booking_id)))

    def _ref(self, calendar_id: str, url: str, reply: DavReply) -> EventRef:
        """The href and ETag of what we just wrote.

        A server that changed the data on store (or does scheduling and answers with a
        Schedule-Tag) may send no ETag; then we ask for it, so the next update can still
        carry an ``If-Match``.
        """
        location = reply.header("Location")
        target = urljoin(url, location) if location else url
        etag = reply.header("ETag")
        if not etag:
            found, _ = dav.propfind(self.http, target, 0, (DAV, "getetag"))
            etag = found[0].text(DAV, "getetag") if found else None
        return EventRef(calendar_id, href_path(target), etag)


def _diff(stored: dict[str, str], listing: dav.Changes) -> dav.Changes:
    changed = {key: etag for key, etag in listing.changed.items() if stored.get(key) != etag}
    return dav.Changes(changed, set(stored) - set(listing.changed), dict(listing.raw))
