"""A stateful loopback fake of the Microsoft identity platform and the Graph endpoints calbook uses.

One HTTPS server on 127.0.0.1 (a throwaway self-signed certificate; tests point
``SSL_CERT_FILE`` at it, since MSAL insists on an https authority) in a thread. The real
``msal`` library and calbook's real httpx client talk to it:

* ``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/oauth2/v2.0/token``:
  authorization code with PKCE (S256 checked against the authorization URL's challenge, the
  code single use, redirect URI and client secret checked, the nonce put in the ID token),
  refresh (rotating refresh tokens; ``invalid_grant`` AADSTS700082 once revoked);
* ``/v1.0/me/calendars``, ``/me/calendar``, ``/me/mailboxSettings/timeZone``;
* ``/v1.0/me/calendars/{id}/calendarView/delta``: pages of ``maxpagesize``, ``@odata.nextLink``
  then ``@odata.deltaLink``; a delta link answers what changed since it was issued (removed
  events as ``@removed``); :meth:`FakeGraph.invalidate_delta` makes old links answer 410
  ``syncStateNotFound``;
* events create (``transactionId`` de-duplication), patch, delete; subscriptions create (with
  the validation handshake towards ``notificationUrl`` and ``lifecycleNotificationUrl``),
  renew, delete; ``getSchedule``.

:meth:`FakeGraph.fail_next` queues canned failures (429 with ``Retry-After``, 503...), and
``requests`` counts every Graph request by path.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx

TENANT = "common"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-graph.pem", directory / "fake-graph.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Calendar:
    id: str
    name: str
    can_edit: bool
    default: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    """event id -> the change number of its last change (deletions stay with ``removed``)."""
    removed: dict[str, int] = field(default_factory=dict)


@dataclass
class FakeGraph:
    client_id: str
    client_secret: str
    mailbox_timezone: str = "UTC"
    calendars: dict[str, Calendar] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    validate_notification_urls: bool = True
    schedule_error: bool = False
    delay: float = 0.0
    """Seconds every Graph request takes (to see how many a client has in flight at once)."""
    in_flight: int = 0
    max_in_flight: int = 0
    seq: int = 0
    delta_epoch: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _snapshots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None
    cert_path: Path | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        self._dir = tempfile.TemporaryDirectory()
        self.cert_path, key_path = self_signed_cert(Path(self._dir.name))
        fake = self

        class Handler(_Handler):
            graph = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._dir is not None:
            self._dir.cleanup()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graph_root(self) -> str:
        return self.base + "/v1.0"

    # -- test controls ----------------------------------------------------------------------

    def add_calendar(self, calendar_id: str, name: str, can_edit: bool = True, default: bool = False) -> Calendar:
        with self.lock:
            calendar = self.calendars[calendar_id] = Calendar(calendar_id, name, can_edit, default)
            return calendar

    def put_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Add or replace an event (an occurrence: calendarView is already expanded)."""
        with self.lock:
            calendar = self.calendars[calendar_id]
            event = {"showAs": "busy", "isCancelled": False, "isAllDay": False, **event}
            event.setdefault("id", "AAMk" + secrets.token_hex(8))
            calendar.events[event["id"]] = event
            self.seq += 1
            calendar.changed[event["id"]] = self.seq
            calendar.removed.pop(event["id"], None)
            return event

    def remove_event(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            calendar = self.calendars[calendar_id]
            calendar.events.pop(event_id, None)
            calendar.changed.pop(event_id, None)
            self.seq += 1
            calendar.removed[event_id] = self.seq

    def invalidate_delta(self) -> None:
        with self.lock:
            self.delta_epoch += 1

    def fail_next(self, path_contains: str, status: int, headers: dict[str, str] | None = None,
                  body: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.failures.append((path_contains, status, headers or {}, body or {}))

    def revoke(self) -> None:
        with self.lock:
            self.revoked.update(self.refresh_tokens)
            self.access_tokens.clear()

    def approve(self, authorization_url: str, account: str) -> str:
        """The expert consents: a code for this account, bound to the URL's PKCE challenge and nonce."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["client_id"] == self.client_id
        assert query["code_challenge_method"] == "S256"
        scopes = set(query["scope"].split())
        assert {"offline_access", "openid", "Calendars.ReadWrite", "User.Read"} <= scopes, scopes
        code = "code-" + secrets.token_urlsafe(12)
        with self.lock:
            self.codes[code] = {"account": account, "challenge": query["code_challenge"], "nonce": query.get("nonce"),
                                "redirect_uri": query["redirect_uri"], "used": False}
        return code

    def notify(self, url: str, items: list[dict[str, Any]], client: Any = None) -> Any:
        """Post a notification body as Graph does (``client``: a TestClient, else real HTTP)."""
        body = {"value": items}
        if client is not None:
            return client.post(url, json=body)
        return httpx.post(url, json=body, timeout=10)

    def change_items(self, calendar_id: str, change: str = "updated") -> list[dict[str, Any]]:
        with self.lock:
            return [{"subscriptionId": s["id"], "clientState": s["clientState"], "changeType": change,
                     "resource": s["resource"], "tenantId": TENANT_ID}
                    for s in self.subscriptions.values() if s["calendar_id"] == calendar_id]

    def events_of(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.calendars[calendar_id].events.values()]

    # -- token endpoint ---------------------------------------------------------------------

    def _id_token(self, account: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"aud": self.client_id, "iss": f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
                  "iat": now, "nbf": now, "exp": now + 3600, "preferred_username": account, "tid": TENANT_ID,
                  "oid": hashlib.sha256(account.encode()).hexdigest()[:32], "name": account}
        if nonce:
            claims["nonce"] = nonce
        return ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), ""])

    def _tokens(self, account: str, nonce: str | None = None) -> dict[str, Any]:
        access, refresh = "access-" + secrets.token_urlsafe(16), "refresh-" + secrets.token_urlsafe(16)
        self.access_tokens.add(access)
        self.refresh_tokens[refresh] = account
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh, "expires_in": 3600,
                "scope": "Calendars.ReadWrite User.Read email openid profile offline_access",
                "id_token": self._id_token(account, nonce), "client_info": _b64(json.dumps(
                    {"uid": hashlib.sha256(account.encode()).hexdigest()[:32], "utid": TENANT_ID}).encode())}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_codes": [7000215]}
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                entry = self.codes.get(form.get("code", ""))
                verifier = form.get("code_verifier", "")
                challenge = _b64(hashlib.sha256(verifier.encode()).digest())
                if (entry is None or entry["used"] or entry["redirect_uri"] != form.get("redirect_uri")
                        or challenge != entry["challenge"]):
                    return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: bad code",
                                 "error_codes": [70008]}
                entry["used"] = True
                return 200, self._tokens(entry["account"], entry["nonce"])
            if grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh in self.revoked or refresh not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant", "error_codes": [700082], "error_description":
                                 "AADSTS700082: The refresh token has expired due to inactivity."}
                account = self.refresh_tokens.pop(refresh)
                self.revoked.add(refresh)  # rotated: the old one is spent
                return 200, self._tokens(account)
        return 400, {"error": "unsupported_grant_type"}

    # -- Graph ------------------------------------------------------------------------------

    def delta(self, calendar_id: str, query: dict[str, str], page_size: int) -> tuple[int, dict[str, Any]]:
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None:
                return 404, {"error": {"code": "ErrorItemNotFound"}}
            if "$skiptoken" in query:
                snapshot = self._snapshots.get(query["$skiptoken"])
                if snapshot is None:
                    return 410, {"error": {"code": "syncStateNotFound"}}
                items, rest = snapshot[:page_size], snapshot[page_size:]
                return 200, self._page(calendar_id, items, rest, query)
            if "$deltatoken" in query:
                epoch, since, start, end = query["$deltatoken"].split("~")
                if int(epoch) != self.delta_epoch:
                    return 410, {"error": {"code": "syncStateNotFound", "message": "resync"}}
                changed = [dict(e) for i, e in calendar.events.items()
                           if calendar.changed.get(i, 0) > int(since) and _overlaps(e, start, end)]
                removed = [{"id": i, "@removed": {"reason": "deleted"}} for i, s in calendar.removed.items()
                           if s > int(since)]
                everything = changed + removed
                window = {"startDateTime": start, "endDateTime": end}
            else:
                start, end = query["startDateTime"], query["endDateTime"]
                everything = [dict(e) for e in calendar.events.values() if _overlaps(e, start, end)]
                window = {"startDateTime": start, "endDateTime": end}
            items, rest = everything[:page_size], everything[page_size:]
            return 200, self._page(calendar_id, items, rest, window)

    def _page(self, calendar_id: str, items: list[dict[str, Any]], rest: list[dict[str, Any]],
              window: dict[str, str]) -> dict[str, Any]:
        path = f"{self.graph_root}/me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
        answer: dict[str, Any] = {"value": items}
        if rest:
            token = secrets.token_urlsafe(8)
            self._snapshots[token] = rest
            answer["@odata.nextLink"] = f"{path}?{urlencode({'$skiptoken': token, **_window(window)})}"
        else:
            token = f"{self.delta_epoch}~{self.seq}~{window['startDateTime']}~{window['endDateTime']}"
            answer["@odata.deltaLink"] = f"{path}?{urlencode({'$deltatoken': token})}"
        return answer

    def create_event(self, calendar_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if calendar_id not in self.calendars:
                return 404, {"error": {"code": "ErrorItemNotFound"}}
            if not self.calendars[calendar_id].can_edit:
                return 403, {"error": {"code": "ErrorAccessDenied"}}
            transaction = body.get("transactionId")
            if transaction and transaction in self.transactions:
                existing = self._find(self.transactions[transaction])
                if existing is not None:
                    return 201, existing
            event = self.put_event(calendar_id, {k: v for k, v in body.items()})
            event["@odata.etag"] = f'W/"{self.seq}"'
            if transaction:
                self.transactions[transaction] = event["id"]
            return 201, dict(event)

    def _find(self, event_id: str) -> dict[str, Any] | None:
        for calendar in self.calendars.values():
            if event_id in calendar.events:
                return dict(calendar.events[event_id])
        return None

    def _calendar_of(self, event_id: str) -> Calendar | None:
        return next((c for c in self.calendars.values() if event_id in c.events), None)

    def subscribe(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resource = str(body.get("resource", ""))
        calendar_id = resource.removeprefix("me/calendars/").removesuffix("/events")
        if calendar_id not in self.calendars:
            return 404, {"error": {"code": "ExtensionError"}}
        if self.validate_notification_urls:
            for key in ("notificationUrl", "lifecycleNotificationUrl"):
                token = "vt-" + secrets.token_urlsafe(8)
                try:
                    answer = httpx.post(f"{body[key]}?validationToken={quote(token)}", timeout=10)
                except httpx.HTTPError:
                    return 400, {"error": {"code": "ValidationError", "message": "unreachable"}}
                if (answer.status_code != 200 or answer.text != token
                        or not answer.headers.get("content-type", "").startswith("text/plain")):
                    return 400, {"error": {"code": "ValidationError", "message": "validation failed"}}
        subscription = {"id": secrets.token_hex(16), "resource": resource, "calendar_id": calendar_id,
                        "changeType": body["changeType"], "clientState": body["clientState"],
                        "notificationUrl": body["notificationUrl"],
                        "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
                        "expirationDateTime": body["expirationDateTime"]}
        with self.lock:
            self.subscriptions[subscription["id"]] = subscription
        shown = {k: v for k, v in subscription.items() if k not in ("clientState", "calendar_id")}
        return 201, shown


def _window(window: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in window.items() if k in ("startDateTime", "endDateTime")}


def _parse(value: str) -> dt.datetime:
    text = value.rstrip("Z").split(".")[0]
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _overlaps(event: dict[str, Any], start: str, end: str) -> bool:
    return _parse(event["start"]["dateTime"]) < _parse(end) and _parse(start) < _parse(event["end"]["dateTime"])


class _Handler(BaseHTTPRequestHandler):
    graph: FakeGraph

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        g = self.graph
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        raw = self._body()
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            tenant = path.split("/")[1]
            return self._send(200, {
                "authorization_endpoint": f"{g.base}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{g.base}/{tenant}/oauth2/v2.0/token",
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            })
        if path.endswith("/oauth2/v2.0/token") or path == "/alt/token":
            with g.lock:
                g.requests["token" + ("-alt" if path == "/alt/token" else "")] += 1
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            status, answer = g.token(form)
            return self._send(status, answer)
        if not path.startswith("/v1.0/"):
            return self._send(404, {"error": {"code": "NotFound"}})
        rel = path.removeprefix("/v1.0/")
        with g.lock:
            g.requests[f"{method} {rel.split('/')[0]}/{rel.split('/')[1] if '/' in rel else ''}"] += 1
            g.requests["graph"] += 1
            g.log.append((method, rel + ("?" + unquote(parts.query) if parts.query else "")))
            failure = next((f for f in g.failures if f[0] in f"{method} {rel}?{unquote(parts.query)}"), None)
            if failure is not None:
                g.failures.remove(failure)
        if failure is not None:
            return self._send(failure[1], failure[3] or {"error": {"code": "failure"}}, failure[2])
        if g.delay:
            with g.lock:
                g.in_flight += 1
                g.max_in_flight = max(g.max_in_flight, g.in_flight)
            time.sleep(g.delay)
            with g.lock:
                g.in_flight -= 1
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in g.access_tokens:
            return self._send(401, {"error": {"code": "InvalidAuthenticationToken"}})
        body = json.loads(raw) if raw else {}
        prefer = self.headers.get("Prefer", "")
        page_size = 1000
        if "odata.maxpagesize=" in prefer:
            page_size = int(prefer.split("odata.maxpagesize=")[1].split(",")[0].strip())
        segments = rel.split("/")
        if rel == "me/calendars" and method == "GET":
            with g.lock:
                value = [{"id": c.id, "name": c.name, "canEdit": c.can_edit, "isDefaultCalendar": c.default}
                         for c in g.calendars.values()]
            return self._send(200, {"value": value})
        if rel == "me/calendar" and method == "GET":
            default = next(c for c in g.calendars.values() if c.default)
            return self._send(200, {"id": default.id})
        if rel == "me/mailboxSettings/timeZone":
            return self._send(200, {"value": g.mailbox_timezone})
        if rel == "me/calendar/getSchedule" and method == "POST":
            return self._send(200, {"value": [self._schedule(body)]})
        if len(segments) == 5 and segments[0] == "me" and segments[3:] == ["calendarView", "delta"]:
            assert 'outlook.timezone="UTC"' in prefer, prefer
            status, answer = g.delta(segments[2], query, page_size)
            return self._send(status, answer)
        if len(segments) == 4 and segments[:2] == ["me", "calendars"] and segments[3] == "events" and method == "POST":
            status, answer = g.create_event(segments[2], body)
            return self._send(status, answer)
        if len(segments) == 3 and segments[:2] == ["me", "events"]:
            event_id = segments[2]
            with g.lock:
                calendar = g._calendar_of(event_id)
                if calendar is None:
                    return self._send(404, {"error": {"code": "ErrorItemNotFound"}})
                if method == "DELETE":
                    g.remove_event(calendar.id, event_id)
                    return self._send(204)
                if method == "PATCH":
                    event = {**calendar.events[event_id], **body}
                    g.put_event(calendar.id, event)
                    return self._send(200, {**event, "@odata.etag": f'W/"{g.seq}"'})
        if segments[0] == "subscriptions":
            if method == "POST" and len(segments) == 1:
                status, answer = g.subscribe(body)
                return self._send(status, answer)
            with g.lock:
                subscription = g.subscriptions.get(segments[1]) if len(segments) == 2 else None
                if subscription is None:
                    return self._send(404, {"error": {"code": "ResourceNotFound"}})
                if method == "PATCH":
                    subscription["expirationDateTime"] = body["expirationDateTime"]
                    return self._send(200, {k: v for k, v in subscription.items() if k != "clientState"})
                if method == "DELETE":
                    del g.subscriptions[segments[1]]
                    return self._send(204)
        return self._send(400, {"error": {"code": "BadRequest", "message": f"fake does not know {method} {rel}"}})

    def _schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        g = self.graph
        start, end = body["startTime"]["dateTime"], body["endTime"]["dateTime"]
        items = []
        with g.lock:
            for calendar in g.calendars.values():
                for event in calendar.events.values():
                    if _overlaps(event, start, end) and event.get("showAs") not in ("free", "workingElsewhere"):
                        items.append({"status": event.get("showAs", "busy"), "start": event["start"],
                                      "end": event["end"]})
        if g.schedule_error:
            return {"scheduleId": body["schedules"][0], "error": {"message": "mailbox unavailable",
                                                                  "responseCode": "ErrorMailboxNotFound"}}
        return {"scheduleId": body["schedules"][0], "scheduleItems": items}
