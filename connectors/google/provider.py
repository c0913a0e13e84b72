"""``GoogleCalendarProvider``: calbook's ``CalendarProvider`` over the Calendar API v3.

One instance wraps one connection's credentials, one httplib2 connection and one discovery
service object. httplib2 is not thread-safe, so an instance belongs to one task at a time:
build a provider per task, never share one between threads.

Every API call runs through :meth:`GoogleCalendarProvider._call`, which maps Google's errors to
calbook's (``errors.translate_google_errors``), retries transient ones with backoff and jitter
(``backoff.Backoff``; the shared rate limit's "not now" is one of them, raised by the HTTP
connection every request goes out on, ``gated_http``), and notices when google-auth refreshed
the access token so the caller can store the new credentials (``on_credentials_refreshed`` /
:meth:`updated_credentials`).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from googleapiclient.discovery import build
from googleapiclient.http import HttpRequest

from config.settings import Settings
from connectors.base import (
    BookingEvent,
    BusyInterval,
    CalendarInfo,
    CalendarProvider,
    EventRef,
    FreeBusy,
    PullResult,
    WatchChannel,
    WatchChannels,
)
from connectors.google.backoff import Backoff
from connectors.google.credentials import (
    authorized_http,
    credentials_from_dict,
    credentials_to_dict,
    refresh_transport,
)
from connectors.google.errors import GoogleRequestRejected, translate_google_errors
from connectors.google.events import (
    blocks_time,
    booking_event_body,
    event_id_for_booking,
    event_interval,
    expiration_from_millis,
    is_cancelled,
    parse_rfc3339,
)
from connectors.rate_limits import UNLIMITED, RequestGate

log = logging.getLogger(__name__)

CURSOR_FORMAT = 1
PAGE_SIZE = 250
FULL_SYNC_MARGIN = timedelta(days=14)
"""A full sync reads this far beyond the requested window.

A sync token reports changes, not time passing: an event that lay beyond the window at the
full sync and never changes would never arrive. So the cursor remembers how far the last full
sync reached (``covered_until``) and a new full sync runs once the window end passes it; the
margin makes that happen every two weeks rather than on every pull.
"""
FREEBUSY_MAX_CALENDARS = 50
FREEBUSY_MAX_RANGE = timedelta(days=90)
PATCH_ATTEMPTS = 3
MAX_PAGES = 2000
"""Guard against a server that never stops paging (2000 pages of 250 is 500k events)."""
WRITABLE_ROLES = frozenset({"owner", "writer"})


def api_endpoint(api_root: str) -> str:
    """``google_api_root`` is the API root (like Google's ``https://www.googleapis.com/``); the
    client library wants the full service base, so the Calendar service path is added here."""
    return api_root.rstrip("/") + "/calendar/v3/"


class GoogleCalendarProvider(CalendarProvider):
    """Google Calendar for one connection. Not thread-safe: one per task."""

    def __init__(
        self,
        credentials: dict[str, Any],
        *,
        settings: Settings,
        connection_id: str | None = None,
        on_credentials_refreshed: Callable[[dict[str, Any]], None] | None = None,
        backoff: Backoff | None = None,
        page_size: int = PAGE_SIZE,
        gate: RequestGate = UNLIMITED,
    ) -> None:
        """``gate`` holds the shared rate limits of the account and the project
        (``connectors.rate_limits``); every API request waits for it (``gated_http``)."""
        self._settings = settings
        self._scopes: list[str] | None = credentials.get("scopes")
        self._credentials = credentials_from_dict(credentials, self._settings)
        self._reported_token = self._credentials.token
        self._refreshed = False
        self._on_refreshed = on_credentials_refreshed
        self._backoff = backoff or Backoff()
        self._page_size = page_size
        self._connection_id = connection_id
        self._refresh_transport = refresh_transport()
        self._http = authorized_http(self._credentials, self._refresh_transport, gate=gate)
        self._service: Any = None

    # -- credentials ------------------------------------------------------------------------

    def updated_credentials(self) -> dict[str, Any] | None:
        """The credentials dict to store again if google-auth refreshed the token, else ``None``."""
        if not self._refreshed:
            return None
        return credentials_to_dict(self._credentials, self._scopes)

    def close(self) -> None:
        """Release the HTTP connections (also happens when the provider is garbage-collected)."""
        self._http.close()
        self._refresh_transport.session.close()

    def watch_channels(self) -> WatchChannels:
        return self

    def free_busy(self) -> FreeBusy:
        return self

    # -- CalendarProvider -------------------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        calendars: list[CalendarInfo] = []
        for page in self._pages("calendarList.list", lambda token: self._api().calendarList().list(pageToken=token)):
            for item in page.get("items", []):
                calendars.append(
                    CalendarInfo(
                        id=item["id"],
                        name=item.get("summaryOverride") or item.get("summary") or item["id"],
                        writable=item.get("accessRole") in WRITABLE_ROLES,
                        timezone=item.get("timeZone"),
                    )
                )
        return calendars

    def pull(
        self,
        calendar_id: str,
        cursor: dict[str, Any] | None,
        window_start: datetime,
        window_end: datetime,
        default_tz: str,
    ) -> PullResult:
        """Busy instances of one calendar: incremental from the cursor's sync token when it is
        still good and covers the window, otherwise a full sync (also after a 410 GONE)."""
        cursor = cursor or {}
        token = cursor.get("sync_token")
        covered_until = cursor.get("covered_until")
        if token and covered_until and parse_rfc3339(covered_until) >= window_end:
            try:
                return self._incremental(calendar_id, cursor, default_tz)
            except GoogleRequestRejected as exc:
                if exc.status != 410:
                    raise
                log.info(
                    "google pull: sync token invalid, full sync (connection=%s calendar=%s)",
                    self._connection_id,
                    calendar_id,
                )
        return self._full(calendar_id, window_start, window_end, cursor, default_tz)

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef:
        """Create or move the booking's event; safe to repeat (deterministic id, 409 -> patch)."""
        body = booking_event_body(event)
        if existing is not None and existing.calendar_id != calendar_id:
            # The expert picked another destination calendar: move by delete + insert.
            self.delete_event(existing.calendar_id, event.booking_id, existing)
            existing = None
        if existing is not None:
            try:
                return self._patch(calendar_id, existing.ref, body, existing.etag)
            except GoogleRequestRejected as exc:
                if exc.status not in (404, 410):
                    raise
                log.info(
                    "google put_event: stored event gone, inserting again (connection=%s calendar=%s)",
                    self._connection_id,
                    calendar_id,
                )
        event_id = event_id_for_booking(event.booking_id)
        try:
            created = self._call(
                "events.insert",
                lambda: (
                    self._api()
                    .events()
                    .insert(calendarId=calendar_id, body={**body, "id": event_id}, sendUpdates="none")
                ),
                calendar_id,
            )
        except GoogleRequestRejected as exc:
            if exc.status != 409:
                raise
            # Already there: from an earlier attempt, or deleted by the expert (a deleted event
            # keeps its id as ``cancelled``). Patching with ``status: confirmed`` covers both.
            current = self._get_event(calendar_id, event_id)
            return self._patch(calendar_id, event_id, body, current.get("etag"))
        return EventRef(calendar_id=calendar_id, ref=created["id"], etag=created.get("etag"))

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None:
        """Delete the booking's event; 404 (never there) and 410 (already deleted) mean done."""
        event_id = existing.ref if existing is not None else event_id_for_booking(booking_id)
        try:
            self._call(
                "events.delete",
                lambda: self._api().events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates="none"),
                calendar_id,
            )
        except GoogleRequestRejected as exc:
            if exc.status not in (404, 410):
                raise

    # -- beyond the interface ---------------------------------------------------------------

    def freebusy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[BusyInterval]]:
        """Busy intervals per calendar over ``[start, end)`` from ``freebusy.query``.

        Google takes at most 50 calendars and a bounded range per query, so the request is cut
        into chunks. A calendar Google answers with errors for (not found, no access) counts as
        busy over the whole range: offering a slot there could double-book the expert.
        Free/busy cannot tell calbook's own events apart: a booking already written to the
        destination calendar shows up as busy here, which the caller must allow for.
        """
        busy: dict[str, list[BusyInterval]] = {calendar_id: [] for calendar_id in calendar_ids}
        failed: set[str] = set()
        for group in _chunks(list(dict.fromkeys(calendar_ids)), FREEBUSY_MAX_CALENDARS):
            for range_start, range_end in _ranges(start, end, FREEBUSY_MAX_RANGE):
                body = {
                    "timeMin": _rfc3339(range_start),
                    "timeMax": _rfc3339(range_end),
                    "items": [{"id": calendar_id} for calendar_id in group],
                }
                answer = self._call("freebusy.query", lambda body=body: self._api().freebusy().query(body=body))
                answered = answer.get("calendars", {})
                for calendar_id in group:
                    entry = answered.get(calendar_id)
                    if entry is None or entry.get("errors"):
                        failed.add(calendar_id)
                        continue
                    for period in entry.get("busy", []):
                        busy[calendar_id].append(
                            BusyInterval(start=parse_rfc3339(period["start"]), end=parse_rfc3339(period["end"]))
                        )
        for calendar_id in failed:
            log.warning(
                "google freebusy: calendar answered with errors, counted busy (connection=%s calendar=%s)",
                self._connection_id,
                calendar_id,
            )
            busy[calendar_id] = [BusyInterval(start=start, end=end)]
        return busy

    def watch(self, calendar_id: str, address: str, ttl: timedelta) -> WatchChannel:
        """Open a push channel on the calendar's events; notifications go to ``address``."""
        token = secrets.token_urlsafe(32)
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(int(ttl.total_seconds()))},
        }
        answer = self._call(
            "events.watch", lambda: self._api().events().watch(calendarId=calendar_id, body=body), calendar_id
        )
        return WatchChannel(
            id=answer.get("id", body["id"]),
            resource_id=answer["resourceId"],
            token=token,
            expiration=expiration_from_millis(answer.get("expiration")),
            calendar_id=calendar_id,
        )

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stop a push channel; an unknown or already stopped channel (404) is fine."""
        try:
            self._call(
                "channels.stop",
                lambda: self._api().channels().stop(body={"id": channel_id, "resourceId": resource_id}),
            )
        except GoogleRequestRejected as exc:
            if exc.status != 404:
                raise

    # -- sync internals ---------------------------------------------------------------------

    def _full(
        self,
        calendar_id: str,
        window_start: datetime,
        window_end: datetime,
        cursor: dict[str, Any],
        default_tz: str,
    ) -> PullResult:
        covered_until = window_end + FULL_SYNC_MARGIN
        params = {
            "calendarId": calendar_id,
            "singleEvents": True,
            "showDeleted": False,
            "timeMin": _rfc3339(window_start),
            "timeMax": _rfc3339(covered_until),
            "maxResults": self._page_size,
        }
        items, sync_token, time_zone = self._list_events(calendar_id, params)
        tz = time_zone or cursor.get("time_zone") or default_tz
        result = PullResult(calendar_id=calendar_id, full=True)
        for item in items:
            if blocks_time(item):
                interval = event_interval(item, tz)
                result.upserts[item["id"]] = [interval] if interval else []
        result.cursor = _cursor(sync_token, _rfc3339(covered_until), tz)
        log.info(
            "google pull: full sync, %d busy events (connection=%s calendar=%s)",
            len(result.upserts),
            self._connection_id,
            calendar_id,
        )
        return result

    def _incremental(self, calendar_id: str, cursor: dict[str, Any], default_tz: str) -> PullResult:
        # No timeMin/timeMax/showDeleted with a sync token: Google rejects them (and deleted
        # items are always included in an incremental answer).
        params = {
            "calendarId": calendar_id,
            "singleEvents": True,
            "syncToken": cursor["sync_token"],
            "maxResults": self._page_size,
        }
        items, sync_token, time_zone = self._list_events(calendar_id, params)
        tz = time_zone or cursor.get("time_zone") or default_tz
        result = PullResult(calendar_id=calendar_id, full=False)
        for item in items:
            event_id = item["id"]
            if is_cancelled(item):
                # With singleEvents=true a cancelled instance of a series comes with its own
                # instance id, so exactly that occurrence's block goes.
                result.upserts.pop(event_id, None)
                result.deleted.add(event_id)
                continue
            result.deleted.discard(event_id)
            interval = event_interval(item, tz) if blocks_time(item) else None
            result.upserts[event_id] = [interval] if interval else []
        result.cursor = _cursor(sync_token, cursor["covered_until"], tz)
        log.info(
            "google pull: incremental, %d changed, %d deleted (connection=%s calendar=%s)",
            len(result.upserts),
            len(result.deleted),
            self._connection_id,
            calendar_id,
        )
        return result

    def _list_events(self, calendar_id: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
        """All pages of one ``events.list``; the sync token only comes with the last page."""
        items: list[dict[str, Any]] = []
        sync_token: str | None = None
        time_zone: str | None = None
        for page in self._pages(
            "events.list", lambda token: self._api().events().list(pageToken=token, **params), calendar_id
        ):
            items.extend(page.get("items", []))
            time_zone = time_zone or page.get("timeZone")
            sync_token = page.get("nextSyncToken")
        if not sync_token:
            raise GoogleRequestRejected("events.list: Google gave no sync token", status=200, reason=None)
        return items, sync_token, time_zone

    def _pages(
        self, what: str, make: Callable[[str | None], HttpRequest], calendar_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(what, lambda token=token: make(token), calendar_id)
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
        raise GoogleRequestRejected(f"{what}: more than {MAX_PAGES} pages", status=200, reason="tooManyPages")

    # -- write internals --------------------------------------------------------------------

    def _get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        return self._call(
            "events.get",
            lambda: self._api().events().get(calendarId=calendar_id, eventId=event_id),
            calendar_id,
        )

    def _patch(self, calendar_id: str, event_id: str, body: dict[str, Any], etag: str | None) -> EventRef:
        """Patch under ``If-Match``; on 412 (someone edited the event) re-read and re-apply."""
        for attempt in range(PATCH_ATTEMPTS):
            headers = {"If-Match": etag} if etag else {}
            try:
                patched = self._call(
                    "events.patch",
                    lambda: (
                        self._api()
                        .events()
                        .patch(calendarId=calendar_id, eventId=event_id, body=body, sendUpdates="none")
                    ),
                    calendar_id,
                    headers=headers,
                )
            except GoogleRequestRejected as exc:
                if exc.status != 412 or attempt + 1 >= PATCH_ATTEMPTS:
                    raise
                log.info(
                    "google put_event: stale etag, re-reading (connection=%s calendar=%s)",
                    self._connection_id,
                    calendar_id,
                )
                etag = self._get_event(calendar_id, event_id).get("etag")
                continue
            return EventRef(calendar_id=calendar_id, ref=patched["id"], etag=patched.get("etag"))
        raise AssertionError("unreachable: the loop returns or raises")

    # -- plumbing ---------------------------------------------------------------------------

    def _api(self) -> Any:
        if self._service is None:
            options = (
                {"api_endpoint": api_endpoint(self._settings.google_api_root)}
                if self._settings.google_api_root
                else None
            )
            self._service = build(
                "calendar",
                "v3",
                http=self._http,
                client_options=options,
                static_discovery=True,
                cache_discovery=False,
            )
        return self._service

    def _call(
        self,
        what: str,
        make: Callable[[], HttpRequest],
        calendar_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        context = f"google {what}" + (f" calendar {calendar_id}" if calendar_id else "")

        def once() -> Any:
            request = make()
            if headers:
                request.headers.update(headers)
            try:
                with translate_google_errors(context):
                    return request.execute(num_retries=0)
            finally:
                self._notice_refresh()

        return self._backoff.run(once, what)

    def _notice_refresh(self) -> None:
        """Report a refreshed token once, even when the call that triggered it failed."""
        if self._credentials.token == self._reported_token:
            return
        self._reported_token = self._credentials.token
        self._refreshed = True
        log.info("google credentials refreshed (connection=%s)", self._connection_id)
        if self._on_refreshed is not None:
            self._on_refreshed(credentials_to_dict(self._credentials, self._scopes))


def _cursor(sync_token: str, covered_until: str, time_zone: str) -> dict[str, Any]:
    return {
        "format": CURSOR_FORMAT,
        "sync_token": sync_token,
        "covered_until": covered_until,
        "time_zone": time_zone,
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _ranges(start: datetime, end: datetime, longest: timedelta) -> Iterator[tuple[datetime, datetime]]:
    cursor = start
    while cursor < end:
        stop = min(end, cursor + longest)
        yield cursor, stop
        cursor = stop
