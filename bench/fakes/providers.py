"""The test suite's Google and Microsoft fakes (``tests/support/fakes``), opened to thousands of accounts.

The fakes model one mailbox each; calbook never lists calendars during a sync when the
connection names its busy calendars (docs/sync.md#pull), so one fake can hold every account's
calendars under their own ids (Google: the account's e-mail for the primary, group-calendar ids
for the others; Microsoft: ``AAMk<n>==``). Each seeded
account gets an access token the fake accepts and a refresh token its token endpoint knows, so
the stored credentials are exactly what an OAuth connect would have stored.

The fakes record every request for tests; over a long run that is memory and lock time the
benchmark does not want, so the recording lists are swapped for ones that keep nothing.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.fakes.events import FakeEvent, generated, one
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.fakes.microsoft_graph import TENANT_ID, FakeGraph
from tests.support.google_oauth import FakeGoogleOAuth

GOOGLE_CLIENT_ID = "bench-client.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "bench-google-secret"
MICROSOFT_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
MICROSOFT_CLIENT_SECRET = "bench-entra-secret"
GOOGLE_SCOPES = ["https://www.googleapis.com/auth/calendar.calendarlist.readonly",
                 "https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/userinfo.email",
                 "openid"]
FAR = datetime(2099, 1, 1, tzinfo=UTC)


class KeepNothing(list[Any]):
    """A list that drops what is appended (the fakes' request logs)."""

    def append(self, _item: Any) -> None:
        return


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class GoogleAccounts:
    def __init__(self, events_per_calendar: int) -> None:
        self.events_per_calendar = events_per_calendar
        self.fake = FakeGoogleCalendar()
        self.fake.requests = KeepNothing()
        self.oauth = FakeGoogleOAuth(self.fake, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
        self.oauth.token_requests = KeepNothing()
        self.notified = 0

    def start(self) -> None:
        self.fake.start()
        self.oauth.start()

    def stop(self) -> None:
        self.oauth.stop()
        self.fake.stop()

    def env(self) -> dict[str, str]:
        assert self.fake._server is not None and self.oauth._server is not None
        return {"CALBOOK_GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID, "CALBOOK_GOOGLE_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
                "CALBOOK_GOOGLE_API_ROOT": f"http://127.0.0.1:{self.fake._server.server_address[1]}/",
                "CALBOOK_GOOGLE_TOKEN_URI": f"http://127.0.0.1:{self.oauth._server.server_address[1]}/token",
                "CALBOOK_GOOGLE_AUTH_URI": "https://accounts.test/o/oauth2/auth",
                "OAUTHLIB_INSECURE_TRANSPORT": "1"}

    def add_account(self, email: str, calendars: int = 1) -> tuple[list[str], dict[str, Any]]:
        """The account's calendars (the primary's id is the e-mail, others are group calendars) with their
        events; the credentials dict calbook stores."""
        local = email.split("@")[0]
        ids = [email] + [f"c{k}.{local}@group.calendar.google.com" for k in range(1, calendars)]
        for k, calendar_id in enumerate(ids):
            self.fake.add_calendar(calendar_id, "Work" if k == 0 else f"Team {k}", "UTC", "owner", primary=k == 0)
            for event in generated(calendar_id, self.events_per_calendar):
                self.fake.add_event(calendar_id, self._body(event))
        access, refresh = "access-" + secrets.token_urlsafe(16), "refresh-" + secrets.token_urlsafe(16)
        with self.fake.lock:
            self.fake.valid_tokens.add(access)
        with self.oauth.lock:
            self.oauth.refresh_tokens[refresh] = email
        return ids, {"format": 1, "token": access, "refresh_token": refresh, "expiry": _z(FAR),
                     "scopes": GOOGLE_SCOPES}

    @staticmethod
    def _body(event: FakeEvent) -> dict[str, Any]:
        return {"id": "ev" + secrets.token_hex(8), "summary": "busy", "start": {"dateTime": _z(event.start)},
                "end": {"dateTime": _z(event.end)}}

    def change(self, calendar_id: str, rng: random.Random) -> None:
        self.fake.add_event(calendar_id, self._body(one(calendar_id, rng, "c")))

    def notify(self, http: httpx.Client, calendar_id: str) -> int | None:
        """What Google does after a change: POST the channel's notification to calbook (None: no channel yet)."""
        with self.fake.lock:
            channel = next((dict(c) for c in reversed(self.fake.channels.values()) if c["calendarId"] == calendar_id),
                           None)
        if channel is None:
            return None
        self.notified += 1
        reply = http.post("/v1/webhooks/google", headers={
            "X-Goog-Channel-ID": channel["id"], "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-State": "exists", "X-Goog-Channel-Token": channel["token"] or "",
            "X-Goog-Message-Number": str(self.notified), "X-Goog-Resource-URI": channel["resourceUri"]})
        return reply.status_code

    def watched(self) -> int:
        with self.fake.lock:
            return len({c["calendarId"] for c in self.fake.channels.values()})

    def pushes(self) -> Counter[str]:
        """Live booking events (Google id ``cb`` + the booking's hex) per booking hex."""
        found: Counter[str] = Counter()
        with self.fake.lock:
            for calendar in self.fake.calendars.values():
                for event_id, event in calendar.events.items():
                    if event_id.startswith("cb") and event.get("status") != "cancelled":
                        found[event_id[2:]] += 1
        return found


class MicrosoftAccounts:
    def __init__(self, events_per_calendar: int) -> None:
        self.events_per_calendar = events_per_calendar
        self.fake = FakeGraph(MICROSOFT_CLIENT_ID, MICROSOFT_CLIENT_SECRET)
        self.fake.log = KeepNothing()
        self.next_calendar = 0

    def start(self) -> None:
        self.fake.start()

    def stop(self) -> None:
        self.fake.stop()

    def env(self) -> dict[str, str]:
        assert self.fake.cert_path is not None
        return {"CALBOOK_MICROSOFT_CLIENT_ID": MICROSOFT_CLIENT_ID,
                "CALBOOK_MICROSOFT_CLIENT_SECRET": MICROSOFT_CLIENT_SECRET,
                "CALBOOK_MICROSOFT_AUTHORITY_HOST": self.fake.base, "CALBOOK_MICROSOFT_TENANT": "common",
                "CALBOOK_MICROSOFT_GRAPH_ROOT": self.fake.graph_root, "SSL_CERT_FILE": str(self.fake.cert_path)}

    def add_account(self, email: str, calendars: int = 1) -> tuple[list[str], dict[str, Any]]:
        """The account's calendar ids and the credentials dict calbook stores."""
        ids = []
        for k in range(calendars):
            calendar_id = f"AAMk{self.next_calendar}=="
            self.next_calendar += 1
            ids.append(calendar_id)
            self.fake.add_calendar(calendar_id, "Calendar" if k == 0 else f"Team {k}", can_edit=True,
                                   default=not self.fake.calendars)
            for event in generated(calendar_id, self.events_per_calendar):
                self.fake.put_event(calendar_id, self._body(event))
        access, refresh = "access-" + secrets.token_urlsafe(16), "refresh-" + secrets.token_urlsafe(16)
        with self.fake.lock:
            self.fake.access_tokens.add(access)
            self.fake.refresh_tokens[refresh] = email
        return ids, {"access_token": access, "refresh_token": refresh, "expires_at": FAR.timestamp(),
                             "tenant": TENANT_ID}

    @staticmethod
    def _body(event: FakeEvent) -> dict[str, Any]:
        fmt = "%Y-%m-%dT%H:%M:%S.0000000"
        return {"subject": "busy", "start": {"dateTime": event.start.strftime(fmt), "timeZone": "UTC"},
                "end": {"dateTime": event.end.strftime(fmt), "timeZone": "UTC"}}

    def change(self, calendar_id: str, rng: random.Random) -> None:
        self.fake.put_event(calendar_id, self._body(one(calendar_id, rng, "c")))

    def notify(self, http: httpx.Client, calendar_id: str) -> int | None:
        items = self.fake.change_items(calendar_id)
        if not items:
            return None
        return http.post("/v1/webhooks/microsoft", json={"value": items}).status_code

    def subscribed(self) -> int:
        with self.fake.lock:
            return len({s["calendar_id"] for s in self.fake.subscriptions.values()})

    def pushes(self) -> Counter[str]:
        """Booking events per booking hex (``transactionId`` ``calbook-<hex>-<sequence>``)."""
        found: Counter[str] = Counter()
        with self.fake.lock:
            for calendar in self.fake.calendars.values():
                for event in calendar.events.values():
                    transaction = str(event.get("transactionId") or "")
                    if transaction.startswith("calbook-"):
                        found[transaction.split("-")[1]] += 1
        return found


def wait_for(condition: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


__all__ = ["GoogleAccounts", "KeepNothing", "MicrosoftAccounts"]
