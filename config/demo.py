"""``calbook demo``: the calendar sync end to end, offline, in one process, for a newcomer.

It starts a throwaway Radicale (a real CalDAV server) on a free port with a temporary
folder, fills a calendar with an expert's week, and runs calbook on a temporary SQLite data
dir: connect the calendar (the same verification the API does), sync it (the worker's
``sync_connection``, called in process instead of through Celery), list tomorrow's slots with
the imported busy time, book, confirm, dispatch the outbox (the worker's push handler writes
the booking into the CalDAV calendar) and read that event back from Radicale. Everything is
removed afterwards; nothing outside the temporary folder is touched.

Why in process rather than ``calbook serve``: the demo has to finish on its own and show each
step; the pieces it calls are exactly the ones the API routes and Celery tasks call.
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

USERNAME = "expert"
PASSWORD = "demo-password"
EXPERT = "demo-expert"
USER = "demo-user"
CALENDAR = f"/{USERNAME}/work/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Radicale:
    """``python -m radicale`` with htpasswd auth and storage in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Radicale:
        users = self.folder / "users"
        users.write_text(f"{USERNAME}:{PASSWORD}\n")
        (self.folder / "config").write_text("")
        command = [
            sys.executable, "-m", "radicale", "--config", str(self.folder / "config"),
            "--server-hosts", f"127.0.0.1:{self.port}", "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(users), "--auth-htpasswd-encryption", "plain", "--auth-delay", "0",
            "--rights-type", "owner_only", "--storage-filesystem-folder", str(self.folder / "collections"),
            "--logging-level", "error",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("radicale exited at start")
            try:
                self.request("OPTIONS", "/")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("radicale did not answer within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None) -> tuple[int, str]:
        """The expert's own calendar app, in effect: plain requests straight to the server."""
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body.encode() or None,
                         headers={"Authorization": f"Basic {token}", **(headers or {})})
            reply = conn.getresponse()
            return reply.status, reply.read().decode()
        finally:
            conn.close()


def _event(uid: str, summary: str, start: datetime, end: datetime, extra: str = "") -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calbook demo//EN", "BEGIN:VEVENT", f"UID:{uid}",
             "DTSTAMP:20250101T000000Z", f"DTSTART:{start.strftime(fmt)}", f"DTEND:{end.strftime(fmt)}",
             f"SUMMARY:{summary}", *([extra] if extra else []), "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _fill_calendar(server: _Radicale, tomorrow: datetime) -> None:
    mkcalendar = ('<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                  "<d:set><d:prop><d:displayname>Work</d:displayname></d:prop></d:set></c:mkcalendar>")
    status, _ = server.request("MKCALENDAR", CALENDAR, mkcalendar, {"Content-Type": "application/xml"})
    if status != 201:
        raise RuntimeError(f"MKCALENDAR answered {status}")
    events = [
        ("dentist", "Dentist", tomorrow.replace(hour=10), tomorrow.replace(hour=11), ""),
        ("team", "Team meeting", tomorrow.replace(hour=13), tomorrow.replace(hour=14, minute=30), ""),
        ("standup", "Stand-up (daily)", tomorrow.replace(hour=9), tomorrow.replace(hour=9, minute=15),
         "RRULE:FREQ=DAILY;COUNT=5"),
        ("lunch", "Lunch (shown as free)", tomorrow.replace(hour=12), tomorrow.replace(hour=13),
         "TRANSP:TRANSPARENT"),
    ]
    for uid, summary, start, end, extra in events:
        status, _ = server.request("PUT", f"{CALENDAR}{uid}.ics", _event(uid, summary, start, end, extra),
                                   {"Content-Type": "text/calendar"})
        if status not in (201, 204):
            raise RuntimeError(f"PUT {uid} answered {status}")
        print(f"    {start:%a %H:%M}-{end:%H:%M} UTC  {summary}")


@contextmanager
def _temporary_environment(data_dir: Path) -> Iterator[None]:
    """Point every calbook setting at the temporary folder, and restore the caller's afterwards."""
    keys = ("CALBOOK_DATA_DIR", "CALBOOK_DATABASE_URL", "CALBOOK_BROKER_URL", "CALBOOK_ENCRYPTION_KEY",
            "CALBOOK_SMTP_URL", "CALBOOK_ALLOW_PRIVATE_URLS")
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ.pop(key, None)
    os.environ["CALBOOK_DATA_DIR"] = str(data_dir)
    os.environ["CALBOOK_ALLOW_PRIVATE_URLS"] = "127.0.0.1"  # the demo's own Radicale, and nothing else local
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _print_slots(store: object, day: datetime) -> list[dict[str, object]]:
    from booking_engine.services.availability import get_slots

    found = get_slots(store, EXPERT, day.date(), 60, None)  # type: ignore[arg-type]
    rows = []
    for slot in found.slots:
        status = str(getattr(slot.status, "value", slot.status))
        rows.append({"start": slot.start, "status": status})
    line = []
    for row in rows:
        start: datetime = row["start"]  # type: ignore[assignment]
        line.append(f"{start:%H:%M} {'free' if row['status'] == 'available' else 'BUSY'}")
    for i in range(0, len(line), 6):
        print("    " + "   ".join(line[i : i + 6]))
    return rows


def run_demo() -> int:
    """Run the walk-through; 0 on success. Logs go to stderr at WARNING, the story to stdout."""
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="calbook-demo-") as folder:
        root = Path(folder)
        (root / "radicale").mkdir()
        with _temporary_environment(root / "data"), _Radicale(root / "radicale") as server:
            return _walk_through(server, root / "data")


def _walk_through(server: _Radicale, data_dir: Path) -> int:
    from sqlalchemy import func, select

    from booking_engine.services import availability, bookings, connections
    from booking_engine.store.db import Store
    from booking_engine.store.migrate import upgrade
    from booking_engine.store.tables import busy_blocks
    from config.settings import Settings
    from config.task_sender import CeleryTaskQueue
    from connectors.accounts import ProviderAccounts
    from worker import wiring

    settings = Settings()  # no broker in the demo: it runs the sync and dispatches the outbox itself
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())
    store = Store.from_url(settings.resolved_database_url())
    try:
        now = datetime.now(UTC)
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        print(f"1. Radicale (CalDAV) runs at {server.url}; the expert's 'Work' calendar holds:")
        _fill_calendar(server, tomorrow)

        current = availability.get_availability(store, EXPERT)
        weekly = {d: {"isAvailable": True, "windows": [{"start": "09:00", "end": "17:00"}]}
                  for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        availability.set_availability(store, EXPERT, EXPERT, {
            "timezone": "UTC", "weeklySchedule": weekly, "bufferBetweenBookingsMinutes": 0,
            "hourlyRateCents": 12000, "currency": "EUR",
        }, current.version)
        print("2. The expert works 09:00-17:00 UTC every day, 120 EUR/h.")

        # Connected as the API connects (every calendar busy, the first writable one receives
        # bookings); no broker in the demo, so nothing is queued: the demo runs the sync itself.
        connection = connections.connect_caldav(
            store, ProviderAccounts(settings), CeleryTaskQueue(settings.resolved_broker_url(), enabled=False),
            EXPERT, url=server.url, username=USERNAME, password=PASSWORD,
        )
        calendars = connection.known_calendars or []
        print(f"3. Connected the account (found {len(calendars)} calendar(s)); connection {connection.id}.")

        outcome = wiring.sync_connection(store, connection.id, settings)
        print(f"4. Sync: {outcome.blocks} busy block(s) imported (the transparent lunch is free time).")
        print(f"   Slots of 60 min on {tomorrow:%a %d %b} (UTC):")
        slots = _print_slots(store, tomorrow)

        pick = next(s for s in slots if s["status"] == "available")
        start: datetime = pick["start"]  # type: ignore[assignment]
        booking = bookings.create_booking(store, USER, EXPERT, start, 60, "video_call", topic="Demo call")
        booking = bookings.confirm_booking(store, EXPERT, booking.id)
        print(f"5. Booked {start:%H:%M}-{booking.end:%H:%M} UTC and the expert confirmed: booking {booking.id}.")

        result = wiring.drain_outbox(store, settings, budget_seconds=30)
        print(f"6. Outbox dispatched {result.dispatched} event(s); the calendar push ran.")
        status, body = server.request("GET", f"{CALENDAR}{booking.id}.ics")
        if status != 200:
            print(f"   the booking's event is missing from the calendar (HTTP {status})", file=sys.stderr)
            return 1
        import icalendar

        event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
        print("   Found in the CalDAV calendar:")
        print(f"    UID      {event['UID']}")
        print(f"    SUMMARY  {event['SUMMARY']}")
        print(f"    START    {event.decoded('DTSTART'):%Y-%m-%d %H:%M %Z}")
        print(f"    END      {event.decoded('DTEND'):%Y-%m-%d %H:%M %Z}")

        wiring.sync_connection(store, connection.id, settings)
        with store.read() as conn:
            imported = conn.execute(select(func.count()).select_from(busy_blocks)
                                    .where(busy_blocks.c.connection_id == connection.id)).scalar_one()
        print(f"7. Synced again: {imported} imported block(s), as before - calbook's own event never comes back"
              " as busy time.")
        print("Done. Everything ran in a temporary folder, which is removed now.")
        return 0
    finally:
        store.dispose()
