"""A stateful fake of the Google Calendar API v3 endpoints calbook uses, on 127.0.0.1.

It speaks the wire format the real google-api-python-client expects (JSON bodies, Google's
error shape ``{"error": {"code", "message", "errors": [{"reason"}]}}``), so the provider's
real HTTP path runs in tests. What it models, because calbook depends on it:

* sync tokens: every change gets a sequence number; a token lists changes after it; tokens can
  be invalidated (410 ``fullSyncRequired``); ``timeMin``/``timeMax`` with a token is a 400;
* paging: ``nextPageToken`` on every page but the last, ``nextSyncToken`` only on the last;
* ``singleEvents`` expansion of weekly series (``RRULE:FREQ=WEEKLY`` with ``COUNT``/``UNTIL``)
  with cancelled instances, ids ``<series>_<YYYYMMDDTHHMMSSZ>`` as Google forms them;
* deleted events stay as ``cancelled`` (``get`` returns them, ``insert`` of their id is 409,
  ``delete`` again is 410), etags, ``If-Match`` -> 412;
* watch channels and ``channels.stop``; ``freeBusy`` with Google's 50-calendar and range limits;
* bearer-token check (401 for an unknown token) and switchable faults for the next N calls.

Test code drives it through the methods of :class:`FakeGoogleCalendar`; all state is behind
one lock because the server answers from its own threads.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
FREEBUSY_MAX_ITEMS = 50
FREEBUSY_MAX_RANGE = timedelta(days=90)
DEFAULT_PAGE = 250


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message or reason)
        self.status = status
        self.reason = reason
        self.message = message or reason
        self.headers = headers or {}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    remaining: int
    status: int
    reason: str
    retry_after: str | None = None


@dataclass
class FakeCalendarState:
    id: str
    summary: str
    time_zone: str
    access_role: str
    primary: bool = False
    generation: int = 0
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # series id -> instance id -> override (only cancellations are modelled)
    overrides: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class FakeGoogleCalendar:
    """The fake's state and its test-facing controls; :meth:`start` serves it over HTTP."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calendars: dict[str, FakeCalendarState] = {}
        self.seq = 0
        self.valid_tokens: set[str] = set()
        self.page_size: int | None = None
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.channels: dict[str, dict[str, Any]] = {}
        self.freebusy_errors: set[str] = set()
        self._pages: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on a free port; returns the API root (``http://127.0.0.1:<port>/``)."""
        fake = self

        class Handler(_Handler):
            state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- test controls ----------------------------------------------------------------------

    def add_calendar(
        self,
        calendar_id: str,
        summary: str = "",
        time_zone: str = "UTC",
        access_role: str = "owner",
        primary: bool = False,
    ) -> None:
        with self.lock:
            self.calendars[calendar_id] = FakeCalendarState(
                calendar_id, summary or calendar_id, time_zone, access_role, primary
            )

    def add_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """An external change: the expert creates or replaces an event in Google."""
        with self.lock:
            cal = self._calendar(calendar_id)
            stored = copy.deepcopy(event)
            stored.setdefault("id", "ev" + secrets.token_hex(8))
            stored.setdefault("status", "confirmed")
            self._touch(stored)
            cal.events[stored["id"]] = stored
            return copy.deepcopy(stored)

    def update_event(self, calendar_id: str, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            stored = self._calendar(calendar_id).events[event_id]
            _merge(stored, copy.deepcopy(changes))
            self._touch(stored)
            return copy.deepcopy(stored)

    def delete_event_externally(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            stored = self._calendar(calendar_id).events[event_id]
            stored["status"] = "cancelled"
            self._touch(stored)

    def cancel_instance(self, calendar_id: str, series_id: str, original_start: datetime) -> str:
        """Delete one occurrence of a weekly series; returns the instance id."""
        with self.lock:
            cal = self._calendar(calendar_id)
            instance_id = f"{series_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            override = {"status": "cancelled", "originalStartTime": {"dateTime": _iso(original_start)}}
            self._touch(override)
            cal.overrides.setdefault(series_id, {})[instance_id] = override
            return instance_id

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        with self.lock:
            self._calendar(calendar_id).generation += 1

    def fail_next(self, count: int, status: int, reason: str = "backendError", retry_after: str | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(count, status, reason, retry_after))

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._calendar(calendar_id).events.get(event_id)
            return copy.deepcopy(found) if found else None

    def calls(self, method: str | None = None, path_suffix: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path_suffix is None or r.path.endswith(path_suffix))
            ]

    # -- request handling -------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append(RecordedRequest(method, path, query, headers, body))
            try:
                self._inject_fault()
                self._check_auth(headers)
                return self._route(method, path, query, headers, body)
            except ApiError as exc:
                error = {
                    "error": {
                        "code": exc.status,
                        "message": exc.message,
                        "errors": [{"domain": "global", "reason": exc.reason, "message": exc.message}],
                    }
                }
                return exc.status, error, exc.headers

    def _inject_fault(self) -> None:
        while self.faults and self.faults[0].remaining <= 0:
            self.faults.pop(0)
        if not self.faults:
            return
        fault = self.faults[0]
        fault.remaining -= 1
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        domain_reason = fault.reason
        raise ApiError(fault.status, domain_reason, f"injected {fault.status} {fault.reason}", extra)

    def _check_auth(self, headers: dict[str, str]) -> None:
        value = headers.get("authorization", "")
        token = value[len("Bearer ") :] if value.startswith("Bearer ") else None
        if token is None or token not in self.valid_tokens:
            raise ApiError(401, "authError", "Invalid Credentials", {"WWW-Authenticate": 'Bearer realm="fake"'})

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict]:
        prefix = "/calendar/v3/"
        if not path.startswith(prefix):
            raise ApiError(404, "notFound", f"no such path {path}")
        segments = [unquote(s) for s in path[len(prefix) :].split("/")]
        match segments:
            case ["users", "me", "calendarList"] if method == "GET":
                return 200, self._calendar_list(query), {}
            case ["calendars", calendar_id, "events"] if method == "GET":
                return 200, self._events_list(calendar_id, query), {}
            case ["calendars", calendar_id, "events"] if method == "POST":
                return 200, self._insert(calendar_id, body), {}
            case ["calendars", calendar_id, "events", "watch"] if method == "POST":
                return 200, self._watch(calendar_id, body), {}
            case ["calendars", calendar_id, "events", event_id] if method == "GET":
                return 200, self._get(calendar_id, event_id), {}
            case ["calendars", calendar_id, "events", event_id] if method == "PATCH":
                return 200, self._patch(calendar_id, event_id, headers, body), {}
            case ["calendars", calendar_id, "events", event_id] if method == "DELETE":
                self._delete(calendar_id, event_id)
                return 204, None, {}
            case ["channels", "stop"] if method == "POST":
                self._stop(body)
                return 204, None, {}
            case ["freeBusy"] if method == "POST":
                return 200, self._freebusy(body), {}
        raise ApiError(404, "notFound", f"no route for {method} {path}")

    # -- endpoints --------------------------------------------------------------------------

    def _calendar_list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        page_token = _one(query, "pageToken")
        if page_token:
            return self._next_page(page_token)
        items = [
            {
                "kind": "calendar#calendarListEntry",
                "id": cal.id,
                "summary": cal.summary,
                "timeZone": cal.time_zone,
                "accessRole": cal.access_role,
                **({"primary": True} if cal.primary else {}),
            }
            for cal in self.calendars.values()
        ]
        return self._paged(query, items, {"kind": "calendar#calendarList"}, sync_token=None)

    def _events_list(self, calendar_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        cal = self._calendar(calendar_id)
        page_token = _one(query, "pageToken")
        if page_token:
            return self._next_page(page_token)
        single = _one(query, "singleEvents") == "true"
        sync_token = _one(query, "syncToken")
        head = {"kind": "calendar#events", "summary": cal.summary, "timeZone": cal.time_zone}
        if sync_token:
            for forbidden in ("timeMin", "timeMax", "iCalUID", "orderBy", "privateExtendedProperty", "q"):
                if forbidden in query:
                    raise ApiError(400, "invalid", f"{forbidden} cannot be used with syncToken")
            generation, since = _decode_sync_token(sync_token, calendar_id)
            if generation != cal.generation:
                raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            items = self._changes(cal, since, single)
        else:
            show_deleted = _one(query, "showDeleted") == "true"
            time_min = _parse(_one(query, "timeMin"))
            time_max = _parse(_one(query, "timeMax"))
            items = self._current(cal, single, show_deleted, time_min, time_max)
        next_sync = _encode_sync_token(calendar_id, cal.generation, self.seq)
        return self._paged(query, items, head, sync_token=next_sync)

    def _paged(
        self, query: dict[str, list[str]], items: list[dict[str, Any]], head: dict[str, Any], sync_token: str | None
    ) -> dict[str, Any]:
        size = int(_one(query, "maxResults") or DEFAULT_PAGE)
        if self.page_size:
            size = min(size, self.page_size)
        tail = {"nextSyncToken": sync_token} if sync_token else {}
        key = secrets.token_urlsafe(8)
        self._pages[key] = (items, {"head": head, "tail": tail, "size": size})
        return self._next_page(key + ":0")

    def _next_page(self, page_token: str) -> dict[str, Any]:
        key, _, offset_text = page_token.partition(":")
        if key not in self._pages:
            raise ApiError(400, "invalid", "bad page token")
        items, meta = self._pages[key]
        offset = int(offset_text)
        chunk = items[offset : offset + meta["size"]]
        page = {**meta["head"], "items": copy.deepcopy(chunk)}
        if offset + meta["size"] < len(items):
            page["nextPageToken"] = f"{key}:{offset + meta['size']}"
        else:
            page.update(meta["tail"])
        return page

    def _current(
        self,
        cal: FakeCalendarState,
        single: bool,
        show_deleted: bool,
        time_min: datetime | None,
        time_max: datetime | None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in cal.events.values():
            if event["status"] == "cancelled" and not show_deleted:
                continue
            candidates = self._instances(cal, event) if single and event.get("recurrence") else [event]
            for item in candidates:
                if item["status"] == "cancelled" and not show_deleted:
                    continue
                if item["status"] != "cancelled" and not _overlaps(item, cal.time_zone, time_min, time_max):
                    continue
                out.append(_public(item))
        return sorted(out, key=lambda e: (_start_key(e, cal.time_zone), e["id"]))

    def _changes(self, cal: FakeCalendarState, since: int, single: bool) -> list[dict[str, Any]]:
        out: list[tuple[int, dict[str, Any]]] = []
        for event in cal.events.values():
            series_changed = event["_seq"] > since
            if single and event.get("recurrence") and event["status"] != "cancelled":
                for item in self._instances(cal, event):
                    if series_changed or item["_seq"] > since:
                        out.append((item["_seq"], _public(item)))
            elif series_changed:
                out.append((event["_seq"], _public(event)))
        return [item for _, item in sorted(out, key=lambda pair: (pair[0], pair[1]["id"]))]

    def _instances(self, cal: FakeCalendarState, series: dict[str, Any]) -> list[dict[str, Any]]:
        rule = _weekly_rule(series["recurrence"])
        tz = ZoneInfo(series["start"].get("timeZone") or cal.time_zone)
        start = _parse(series["start"]["dateTime"]).astimezone(tz)
        length = _parse(series["end"]["dateTime"]) - _parse(series["start"]["dateTime"])
        overrides = cal.overrides.get(series["id"], {})
        out = []
        for n in range(rule["count"]):
            local = (start.replace(tzinfo=None) + timedelta(weeks=n)).replace(tzinfo=tz)
            instance_start = local.astimezone(UTC)
            if rule["until"] and instance_start > rule["until"]:
                break
            instance_id = f"{series['id']}_{instance_start:%Y%m%dT%H%M%SZ}"
            base = {k: v for k, v in series.items() if k not in ("recurrence", "id", "start", "end")}
            instance = copy.deepcopy(base) | {
                "id": instance_id,
                "recurringEventId": series["id"],
                "originalStartTime": {"dateTime": _iso(instance_start)},
                "start": {"dateTime": _iso(instance_start)},
                "end": {"dateTime": _iso(instance_start + length)},
            }
            override = overrides.get(instance_id)
            if override is not None:
                instance = {
                    "kind": "calendar#event",
                    "id": instance_id,
                    "recurringEventId": series["id"],
                    "status": override["status"],
                    "originalStartTime": override["originalStartTime"],
                    "etag": override["etag"],
                    "_seq": override["_seq"],
                }
            out.append(instance)
        return out

    def _get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        event = self._calendar(calendar_id).events.get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        return _public(event)

    def _insert(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        cal = self._calendar(calendar_id)
        event = copy.deepcopy(body or {})
        event_id = event.setdefault("id", "ev" + secrets.token_hex(8))
        if not EVENT_ID.match(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in cal.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        event.setdefault("status", "confirmed")
        self._touch(event)
        cal.events[event_id] = event
        return _public(event)

    def _patch(self, calendar_id: str, event_id: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        event = self._calendar(calendar_id).events.get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        if_match = headers.get("if-match")
        if if_match is not None and if_match != event["etag"]:
            raise ApiError(412, "conditionNotMet", "Precondition Failed")
        _merge(event, copy.deepcopy(body or {}))
        self._touch(event)
        return _public(event)

    def _delete(self, calendar_id: str, event_id: str) -> None:
        event = self._calendar(calendar_id).events.get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self._touch(event)

    def _watch(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._calendar(calendar_id)
        if body.get("type") != "web_hook" or not body.get("address") or not body.get("id"):
            raise ApiError(400, "invalid", "channel needs id, type web_hook and address")
        ttl = int((body.get("params") or {}).get("ttl", "604800"))
        expiration = datetime.now(UTC) + timedelta(seconds=ttl)
        channel = {
            "kind": "api#channel",
            "id": body["id"],
            "resourceId": "res" + secrets.token_hex(6),
            "resourceUri": f"https://www.googleapis.com/calendar/v3/calendars/{calendar_id}/events",
            "token": body.get("token"),
            "expiration": str(int(expiration.timestamp() * 1000)),
        }
        self.channels[body["id"]] = channel | {"calendarId": calendar_id, "address": body["address"]}
        return channel

    def _stop(self, body: dict[str, Any]) -> None:
        channel = self.channels.get(body.get("id", ""))
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            raise ApiError(404, "notFound", "Channel not found")
        del self.channels[body["id"]]

    def _freebusy(self, body: dict[str, Any]) -> dict[str, Any]:
        items = body.get("items") or []
        if len(items) > FREEBUSY_MAX_ITEMS:
            raise ApiError(400, "tooManyCalendarsRequested", "too many calendars")
        time_min, time_max = _parse(body["timeMin"]), _parse(body["timeMax"])
        if time_max - time_min > FREEBUSY_MAX_RANGE:
            raise ApiError(400, "timeRangeTooLong", "The requested time range is too long.")
        answer: dict[str, Any] = {}
        for item in items:
            cal = self.calendars.get(item["id"])
            if cal is None or item["id"] in self.freebusy_errors:
                answer[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            busy = []
            for event in self._current(cal, True, False, time_min, time_max):
                if event.get("transparency") == "transparent":
                    continue
                start, end = _bounds(event, cal.time_zone)
                busy.append({"start": _iso(max(start, time_min)), "end": _iso(min(end, time_max))})
            answer[item["id"]] = {"busy": busy}
        return {
            "kind": "calendar#freeBusy",
            "timeMin": body["timeMin"],
            "timeMax": body["timeMax"],
            "calendars": answer,
        }

    # -- helpers ----------------------------------------------------------------------------

    def _calendar(self, calendar_id: str) -> FakeCalendarState:
        cal = self.calendars.get(calendar_id)
        if cal is None:
            raise ApiError(404, "notFound", "Not Found")
        return cal

    def _touch(self, stored: dict[str, Any]) -> None:
        self.seq += 1
        stored["_seq"] = self.seq
        stored["etag"] = f'"{3_000_000_000 + self.seq}"'
        stored["updated"] = _iso(datetime.now(UTC))
        stored["kind"] = "calendar#event"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeGoogleCalendar

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.state.handle(self.command, self.path, headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bounds(event: dict[str, Any], tz_name: str) -> tuple[datetime, datetime]:
    def read(value: dict[str, Any]) -> datetime:
        if "dateTime" in value:
            return _parse(value["dateTime"])  # type: ignore[return-value]
        return datetime.combine(date.fromisoformat(value["date"]), time(0), tzinfo=ZoneInfo(tz_name)).astimezone(UTC)

    return read(event["start"]), read(event["end"])


def _overlaps(event: dict[str, Any], tz_name: str, time_min: datetime | None, time_max: datetime | None) -> bool:
    start, end = _bounds(event, tz_name)
    return (time_min is None or end > time_min) and (time_max is None or start < time_max)


def _start_key(event: dict[str, Any], tz_name: str) -> datetime:
    if "start" not in event:
        return datetime.min.replace(tzinfo=UTC)
    return _bounds(event, tz_name)[0]


def _weekly_rule(recurrence: list[str]) -> dict[str, Any]:
    rule = next(line for line in recurrence if line.startswith("RRULE:"))
    parts = dict(part.split("=", 1) for part in rule[len("RRULE:") :].split(";"))
    if parts.get("FREQ") != "WEEKLY" or parts.get("INTERVAL", "1") != "1" or "BYDAY" in parts:
        raise ApiError(400, "invalid", "the fake only expands plain FREQ=WEEKLY rules")
    until = None
    if "UNTIL" in parts:
        until = datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return {"count": int(parts.get("COUNT", "104")), "until": until}


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}


def _encode_sync_token(calendar_id: str, generation: int, seq: int) -> str:
    raw = json.dumps([calendar_id, generation, seq]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_sync_token(token: str, calendar_id: str) -> tuple[int, int]:
    try:
        cal, generation, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "invalid", "bad sync token") from exc
    if cal != calendar_id:
        raise ApiError(400, "invalid", "sync token of another calendar")
    return int(generation), int(seq)
