"""``MicrosoftCalendarProvider``: calbook's ``CalendarProvider`` over Microsoft Graph.

* Pull: ``calendarView/delta`` per calendar over the window (occurrences of series expanded
  by Graph), every page followed, the ``@odata.deltaLink`` only in the cursor returned after
  the last page (``calendar_sync.apply_pull`` stores it in the transaction of the blocks). A
  delta window does not roll forward, so the cursor remembers how far it reaches
  (``covered_until``) and a full sync re-seeds it once the horizon passes that. An invalid
  delta token (410, ``syncStateNotFound``, ``resyncRequired``) gives a full sync, whose
  ``full`` result replaces every block of the calendar.
* Push: create with ``transactionId`` and the booking-id extended property, patch on
  reschedule (404: create again), delete on cancel (404: done).
* Subscriptions (``watch_channels``), getSchedule (``free_busy``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

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
from connectors.microsoft.events import blocks_time, booking_event_body, event_interval, is_removed
from connectors.microsoft.graph import GraphBackoff, GraphClient, GraphRejected
from connectors.microsoft.timezones import iana_zone
from connectors.rate_limits import UNLIMITED, RequestGate

log = logging.getLogger(__name__)

CURSOR_FORMAT = 1
PAGE_SIZE = 200
MAX_PAGES = 5000
FULL_SYNC_MARGIN = timedelta(days=14)
"""A full sync reads this far beyond the horizon, so it re-seeds every two weeks, not every pull."""
RESYNC_CODES = frozenset({"syncStateNotFound", "resyncRequired", "SyncStateNotFound", "SyncStateInvalid"})
SCHEDULE_MAX_RANGE = timedelta(days=41)
"""getSchedule takes windows under 42 days."""
BUSY_STATUSES = frozenset({"busy", "oof", "tentative", "unknown"})
UTC_PREFER = 'outlook.timezone="UTC"'


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cal(calendar_id: str) -> str:
    return quote(calendar_id, safe="")


class MicrosoftCalendarProvider(CalendarProvider):
    """Microsoft Graph for one connection. One per task."""

    def __init__(
        self,
        credentials: dict[str, Any],
        *,
        settings: Settings,
        mailbox: str,
        connection_id: str | None = None,
        on_credentials_refreshed: Callable[[dict[str, Any]], None] | None = None,
        backoff: GraphBackoff | None = None,
        page_size: int = PAGE_SIZE,
        timeout: float = 30.0,
        gate: RequestGate = UNLIMITED,
    ) -> None:
        """``gate`` holds the mailbox's shared limits (``connectors.rate_limits``); the factory
        builds it for the mailbox and the app."""
        self._settings = settings
        self._mailbox = mailbox
        self._connection_id = connection_id
        self._page_size = page_size
        self.graph = GraphClient(settings, credentials, connection_id=connection_id,
                                 on_refreshed=on_credentials_refreshed, backoff=backoff, timeout=timeout, gate=gate)
        self._mailbox_tz: str | None = None

    def close(self) -> None:
        self.graph.close()

    def updated_credentials(self) -> dict[str, Any] | None:
        return self.graph.credentials if self.graph.refreshed else None

    def renewable_channels(self) -> MicrosoftCalendarProvider:
        return self

    def watch_channels(self) -> MicrosoftCalendarProvider:
        return self

    def free_busy(self) -> FreeBusy:
        return self

    # -- account ----------------------------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        """The mailbox's calendars, the default one first; ``canEdit`` is the writable rule."""
        found: list[tuple[bool, CalendarInfo]] = []
        for page in self._pages("me/calendars", {"$select": "id,name,canEdit,isDefaultCalendar", "$top": "100"}):
            for item in page.get("value", []):
                found.append((bool(item.get("isDefaultCalendar")), CalendarInfo(
                    id=str(item["id"]), name=str(item.get("name") or item["id"]),
                    writable=bool(item.get("canEdit")), timezone=None)))
        found.sort(key=lambda pair: not pair[0])
        return [info for _, info in found]

    def default_calendar(self) -> str | None:
        item = self.graph.get_json("me/calendar", params={"$select": "id"}, what="me/calendar")
        return str(item["id"]) if item.get("id") else None

    def mailbox_timezone(self, fallback: str) -> str:
        """The mailbox's zone as IANA (Exchange mostly answers a Windows name)."""
        if self._mailbox_tz is None:
            try:
                answer = self.graph.get_json("me/mailboxSettings/timeZone", what="mailboxSettings")
                self._mailbox_tz = iana_zone(str(answer.get("value") or "")) or fallback
            except GraphRejected:
                self._mailbox_tz = fallback
        return self._mailbox_tz

    # -- pull -------------------------------------------------------------------------------

    def pull(
        self, calendar_id: str, cursor: dict[str, Any] | None, window_start: datetime, window_end: datetime,
        default_tz: str,
    ) -> PullResult:
        cursor = cursor or {}
        link = cursor.get("delta_link")
        covered = cursor.get("covered_until")
        if link and covered and datetime.fromisoformat(covered.replace("Z", "+00:00")) >= window_end:
            try:
                return self._delta(calendar_id, str(link), cursor, full=False)
            except GraphRejected as exc:
                if exc.status != 410 and exc.code not in RESYNC_CODES:
                    raise
                log.info("microsoft pull: delta token invalid (%s), full sync (connection=%s)",
                         exc.code or exc.status, self._connection_id)
        until = window_end + FULL_SYNC_MARGIN
        tz = self.mailbox_timezone(default_tz)
        start = (f"me/calendars/{_cal(calendar_id)}/calendarView/delta?startDateTime={_iso(window_start)}"
                 f"&endDateTime={_iso(until)}")
        return self._delta(calendar_id, start, {"covered_until": _iso(until), "time_zone": tz}, full=True)

    def _delta(self, calendar_id: str, url: str, cursor: dict[str, Any], *, full: bool) -> PullResult:
        tz = str(cursor.get("time_zone") or "UTC")
        result = PullResult(calendar_id=calendar_id, full=full)
        delta_link: str | None = None
        headers = {"Prefer": f"odata.maxpagesize={self._page_size}, {UTC_PREFER}"}
        pages = 0
        while url:
            pages += 1
            if pages > MAX_PAGES:
                raise GraphRejected("microsoft delta: too many pages", 200, "tooManyPages")
            page = self.graph.get_json(url, headers=headers, what="calendarView/delta")
            for item in page.get("value", []):
                event_id = str(item.get("id") or "")
                if not event_id:
                    continue
                if is_removed(item):
                    result.upserts.pop(event_id, None)
                    if not full:
                        result.deleted.add(event_id)
                    continue
                result.deleted.discard(event_id)
                interval = event_interval(item, tz) if blocks_time(item) else None
                if interval is None and full:
                    result.upserts.pop(event_id, None)
                    continue
                result.upserts[event_id] = [interval] if interval else []
            url = page.get("@odata.nextLink") or ""
            delta_link = page.get("@odata.deltaLink") or delta_link
        if not delta_link:
            raise GraphRejected("microsoft delta: Graph gave no deltaLink", 200, None)
        result.cursor = {"format": CURSOR_FORMAT, "delta_link": delta_link,
                         "covered_until": cursor["covered_until"], "time_zone": tz}
        log.info("microsoft pull: %s, %d pages, %d changed, %d deleted (connection=%s)",
                 "full" if full else "incremental", pages, len(result.upserts), len(result.deleted),
                 self._connection_id)
        return result

    def _pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        first = True
        for _ in range(MAX_PAGES):
            page = self.graph.get_json(url or "", params=params if first else None, what=path)
            first = False
            yield page
            url = page.get("@odata.nextLink")
            if not url:
                return

    # -- push -------------------------------------------------------------------------------

    def put_event(self, calendar_id: str, event: BookingEvent, existing: EventRef | None) -> EventRef:
        """Create or move the booking's event; a repeat gives the same one (``transactionId``)."""
        if existing is not None and existing.calendar_id != calendar_id:
            self.delete_event(existing.calendar_id, event.booking_id, existing)
            existing = None
        if existing is not None:
            try:
                answer = self.graph.request("PATCH", f"me/events/{_cal(existing.ref)}",
                                            json=booking_event_body(event, create=False), what="events.patch")
                data = answer.json()
                return EventRef(calendar_id=calendar_id, ref=str(data.get("id") or existing.ref),
                                etag=data.get("@odata.etag"))
            except GraphRejected as exc:
                if exc.status not in (404, 410):
                    raise
                log.info("microsoft put_event: stored event gone, creating again (connection=%s)",
                         self._connection_id)
        answer = self.graph.request("POST", f"me/calendars/{_cal(calendar_id)}/events",
                                    json=booking_event_body(event, create=True), what="events.create")
        data = answer.json()
        return EventRef(calendar_id=calendar_id, ref=str(data["id"]), etag=data.get("@odata.etag"))

    def delete_event(self, calendar_id: str, booking_id: str, existing: EventRef | None) -> None:
        """Delete the booking's event; 404 means it is gone already. Without a stored ref there is
        nothing calbook wrote that it knows of."""
        if existing is None:
            return
        try:
            self.graph.request("DELETE", f"me/events/{_cal(existing.ref)}", what="events.delete")
        except GraphRejected as exc:
            if exc.status not in (404, 410):
                raise

    # -- subscriptions ----------------------------------------------------------------------

    def watch(self, calendar_id: str, address: str, ttl: timedelta) -> WatchChannel:
        """A subscription on the calendar's events; both kinds of notification go to ``address``."""
        client_state = secrets.token_urlsafe(32)
        resource = f"me/calendars/{calendar_id}/events"
        answer = self.graph.request("POST", "subscriptions", what="subscriptions.create", json={
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": resource,
            "expirationDateTime": _iso(datetime.now(UTC) + ttl),
            "clientState": client_state,
        }).json()
        return WatchChannel(id=str(answer["id"]), resource_id=resource, token=client_state,
                            expiration=_parse_expiry(answer.get("expirationDateTime")), calendar_id=calendar_id)

    def renew(self, subscription_id: str, ttl: timedelta) -> datetime | None:
        """Extend a subscription; ``GraphRejected`` 404 when Graph no longer has it."""
        answer = self.graph.request("PATCH", f"subscriptions/{_cal(subscription_id)}", what="subscriptions.renew",
                                    json={"expirationDateTime": _iso(datetime.now(UTC) + ttl)}).json()
        return _parse_expiry(answer.get("expirationDateTime"))

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        try:
            self.graph.request("DELETE", f"subscriptions/{_cal(channel_id)}", what="subscriptions.delete")
        except GraphRejected as exc:
            if exc.status != 404:
                raise

    # -- free/busy --------------------------------------------------------------------------

    def freebusy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[BusyInterval]]:
        """getSchedule answers for the mailbox (all its calendars): the same intervals for every
        busy calendar. A schedule Graph answers with an error counts as busy over the range."""
        busy: list[BusyInterval] = []
        cursor = start
        while cursor < end:
            stop = min(end, cursor + SCHEDULE_MAX_RANGE)
            answer = self.graph.request("POST", "me/calendar/getSchedule", what="getSchedule",
                                        headers={"Prefer": UTC_PREFER}, json={
                "schedules": [self._mailbox],
                "startTime": {"dateTime": _iso(cursor)[:-1], "timeZone": "UTC"},
                "endTime": {"dateTime": _iso(stop)[:-1], "timeZone": "UTC"},
                "availabilityViewInterval": 15,
            }).json()
            schedules = answer.get("value") or []
            if not schedules or any(s.get("error") for s in schedules):
                log.warning("microsoft getSchedule answered with an error, counted busy (connection=%s)",
                            self._connection_id)
                busy.append(BusyInterval(cursor, stop))
            for schedule in schedules:
                for item in schedule.get("scheduleItems") or []:
                    if str(item.get("status", "busy")) not in BUSY_STATUSES:
                        continue
                    interval = event_interval({"start": item.get("start"), "end": item.get("end")}, "UTC")
                    if interval is not None:
                        busy.append(interval)
            cursor = stop
        return {calendar_id: list(busy) for calendar_id in calendar_ids}


def _parse_expiry(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def as_channels(provider: CalendarProvider) -> WatchChannels | None:
    return provider.watch_channels()
