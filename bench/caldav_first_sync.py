"""Benchmark: calbook's own cost (CPU, memory) of a CalDAV first sync of a 10,000-event calendar.

A first sync is what the worker does for a calendar with no cursor: ``CalDAVProvider.pull``
(ctag PROPFIND, one sync-collection REPORT for the ETags, calendar-multiget REPORTs for the
data, iCalendar parsing and recurrence expansion) and then ``calendar_sync.apply_pull`` (the
busy blocks and the cursor written in one transaction). Each run happens in a fresh child
process, so that its CPU time (``resource.getrusage``) and its peak RSS (``ru_maxrss``, which
counts libxml2's and the database driver's memory too, unlike tracemalloc) are calbook's
alone; the servers run in other processes:

* ``fake``: a loopback server in a child process that answers the ctag PROPFIND, the
  sync-collection and any calendar-multiget from bodies built before the run, so that the
  server's share is near zero and what remains is calbook's;
* ``radicale``: a real Radicale, its storage seeded on disk (10,000 PUTs would benchmark
  Radicale) and its item cache warmed by one sync first;
* ``cyrus``: a real Cyrus IMAP (``tests/support/caldav_servers``, must start as root), seeded
  with PUTs (minutes), optional.

The calendar is a realistic mix (``calendar_objects``): four years of history and a year
ahead, so most objects lie outside the 180-day horizon; weekly and daily series with EXDATEs
and moved or cancelled instances, open-ended series running for years, all-day and
multi-day events, Europe/Berlin and America/New_York VTIMEZONEs as desktop clients write
them, UTC and floating times, cancelled, transparent and declined events.

Printed per run: wall time, calbook CPU seconds, peak RSS delta, requests, the seconds spent
waiting for answers (request sent to body read), busy blocks stored, and the split by phase:
HTTP + XML (everything in ``pull`` but expansion), iCalendar parse + expansion
(``ical_expand``), store writes (``apply_pull``). ``--profile`` adds the top of a cProfile run.

    .venv/bin/python bench/caldav_first_sync.py                       # fake + radicale, sqlite + postgresql
    .venv/bin/python bench/caldav_first_sync.py --servers fake --stores sqlite --profile
    .venv/bin/python bench/caldav_first_sync.py --servers fake,radicale,cyrus --events 10000

Findings (10,000 objects, 15,155 busy blocks, 42 requests; 2-core machine shared with other
work; ``--repeat 2``, the table and the commands in docs/performance.md#caldav-first-sync):

* Before (main at d0aec09): calbook's CPU 10.6-11.4 s whatever the server and the store, 63%
  of it ``icalendar`` parsing and 29% ``recurring-ical-events``, for all 10,000 objects; HTTP
  + XML about 1.2 s on the fake server; store writes 0.2-0.4 s of CPU (3-4 s of PostgreSQL's
  wall time); peak RSS +21 MB (SQLite) to +29 MB (PostgreSQL). Radicale took 8-9 s answering.
* After (``connectors/ical_outline.py``: 7,861 objects entirely outside the window are answered
  without parsing): calbook's CPU 3.9-5.3 s, expansion 2.9-3.4 s of it; wall time on the fake
  server 6.6 s (SQLite) and 8.4 s (PostgreSQL, 4-5 s of it the database's), on Radicale 12-22 s
  of which 7.5-12 s is Radicale; peak RSS unchanged.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(days=1)
WINDOW_END = NOW + timedelta(days=180)
USER, PASSWORD = "bench", "bench-pw"
OWNER = "owner@example.org"
EXPERT_TZ = "Europe/Berlin"

_BERLIN = """BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
END:VTIMEZONE\r
"""
_NEW_YORK = """BEGIN:VTIMEZONE\r
TZID:America/New_York\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:-0500\r
TZOFFSETTO:-0400\r
TZNAME:EDT\r
DTSTART:19700308T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:-0400\r
TZOFFSETTO:-0500\r
TZNAME:EST\r
DTSTART:19701101T020000\r
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r
END:STANDARD\r
END:VTIMEZONE\r
"""


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _event_lines(n: int) -> tuple[str, str]:
    """The VEVENT lines of object ``n`` and the VTIMEZONEs it needs (a deterministic mix)."""
    # Starts spread over four years of history and one ahead, on working hours.
    day = NOW - timedelta(days=4 * 365) + timedelta(days=(n * 7919) % (5 * 365))
    start = day.replace(hour=7 + n % 10, minute=(n % 4) * 15, second=0)
    end = start + timedelta(minutes=30 + 15 * (n % 4))
    uid = f"UID:{n:05d}-bench@example.org\r\nDTSTAMP:20250101T000000Z\r\nSUMMARY:Event {n}\r\n"
    kind = n % 20
    if kind == 0:  # weekly series in Berlin time, two EXDATEs and one moved instance
        first = start + timedelta(days=7)
        second = start + timedelta(days=14)
        moved = start + timedelta(days=21)
        until = _utc(start + timedelta(days=7 * 60))
        master = (f"BEGIN:VEVENT\r\n{uid}DTSTART;TZID=Europe/Berlin:{_local(start)}\r\n"
                  f"DTEND;TZID=Europe/Berlin:{_local(end)}\r\nRRULE:FREQ=WEEKLY;UNTIL={until}\r\n"
                  f"EXDATE;TZID=Europe/Berlin:{_local(first)},{_local(second)}\r\nEND:VEVENT\r\n")
        override = (f"BEGIN:VEVENT\r\n{uid}RECURRENCE-ID;TZID=Europe/Berlin:{_local(moved)}\r\n"
                    f"DTSTART;TZID=Europe/Berlin:{_local(moved + timedelta(hours=2))}\r\n"
                    f"DTEND;TZID=Europe/Berlin:{_local(end + timedelta(days=21, hours=2))}\r\nEND:VEVENT\r\n")
        return master + override, _BERLIN
    if kind == 1:  # daily series in New York time, ten days, one instance cancelled
        cancelled = start + timedelta(days=3)
        master = (f"BEGIN:VEVENT\r\n{uid}DTSTART;TZID=America/New_York:{_local(start)}\r\n"
                  f"DTEND;TZID=America/New_York:{_local(end)}\r\nRRULE:FREQ=DAILY;COUNT=10\r\nEND:VEVENT\r\n")
        override = (f"BEGIN:VEVENT\r\n{uid}RECURRENCE-ID;TZID=America/New_York:{_local(cancelled)}\r\n"
                    f"DTSTART;TZID=America/New_York:{_local(cancelled)}\r\n"
                    f"DTEND;TZID=America/New_York:{_local(end + timedelta(days=3))}\r\n"
                    "STATUS:CANCELLED\r\nEND:VEVENT\r\n")
        return master + override, _NEW_YORK
    if kind == 2 and n % 40 == 2:  # open-ended weekly meeting running for years (UTC, Google style)
        return (f"BEGIN:VEVENT\r\n{uid}DTSTART:{_utc(start)}\r\nDTEND:{_utc(end)}\r\n"
                "RRULE:FREQ=WEEKLY;BYDAY=MO,TH\r\nEND:VEVENT\r\n"), ""
    if kind in (3, 4):  # all-day, some over several days
        last = day.date() + timedelta(days=1 + (n % 3 if kind == 4 else 0))
        return (f"BEGIN:VEVENT\r\n{uid}DTSTART;VALUE=DATE:{day.date():%Y%m%d}\r\n"
                f"DTEND;VALUE=DATE:{last:%Y%m%d}\r\nEND:VEVENT\r\n"), ""
    if kind in (5, 6):
        flag = "STATUS:CANCELLED" if kind == 5 else "TRANSP:TRANSPARENT"
        return f"BEGIN:VEVENT\r\n{uid}DTSTART:{_utc(start)}\r\nDTEND:{_utc(end)}\r\n{flag}\r\nEND:VEVENT\r\n", ""
    if kind == 7:  # an invitation the owner declined, and one they accepted
        status = "DECLINED" if n % 40 == 7 else "ACCEPTED"
        return (f"BEGIN:VEVENT\r\n{uid}DTSTART;TZID=Europe/Berlin:{_local(start)}\r\n"
                f"DTEND;TZID=Europe/Berlin:{_local(end)}\r\nORGANIZER:mailto:boss@example.org\r\n"
                f"ATTENDEE;PARTSTAT={status};CN=Owner:mailto:{OWNER}\r\n"
                "ATTENDEE;PARTSTAT=ACCEPTED:mailto:boss@example.org\r\nEND:VEVENT\r\n"), _BERLIN
    if kind == 8:  # floating time, and a DURATION instead of DTEND
        return f"BEGIN:VEVENT\r\n{uid}DTSTART:{_local(start)}\r\nDURATION:PT45M\r\nEND:VEVENT\r\n", ""
    if kind % 2:
        return f"BEGIN:VEVENT\r\n{uid}DTSTART:{_utc(start)}\r\nDTEND:{_utc(end)}\r\nEND:VEVENT\r\n", ""
    return (f"BEGIN:VEVENT\r\n{uid}DTSTART;TZID=Europe/Berlin:{_local(start)}\r\n"
            f"DTEND;TZID=Europe/Berlin:{_local(end)}\r\nLOCATION:Room {n % 9}\r\nEND:VEVENT\r\n"), _BERLIN


def calendar_objects(count: int) -> list[tuple[str, str]]:
    """``count`` (resource name, iCalendar text) pairs of the benchmark calendar."""
    objects = []
    for n in range(count):
        events, timezones = _event_lines(n)
        text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n{timezones}{events}END:VCALENDAR\r\n"
        objects.append((f"ev-{n:05d}.ics", text))
    return objects


# --- the fake server -----------------------------------------------------------------------

_MS_HEAD = (b'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:" '
            b'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/">')
_HREF = re.compile(rb"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")


def _fake_server(port: int, collection: str, objects: list[tuple[str, str]], ready: Any) -> None:
    """Answer the requests of a first sync from bodies built up front (runs in a child process)."""
    ok = "<d:status>HTTP/1.1 200 OK</d:status>"
    fragments: dict[bytes, bytes] = {}
    listing = []
    for n, (name, text) in enumerate(objects):
        href = f"{collection}{name}"
        etag = f'"etag-{n}"'
        listing.append(f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>{etag}</d:getetag>"
                       f"</d:prop>{ok}</d:propstat></d:response>")
        fragments[href.encode()] = (
            f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>{etag}</d:getetag>"
            f"<c:calendar-data>{escape(text)}</c:calendar-data></d:prop>{ok}</d:propstat></d:response>"
        ).encode()
    sync_body = _MS_HEAD + "".join(listing).encode() + b"<d:sync-token>http://bench/sync/1</d:sync-token></d:multistatus>"
    ctag_body = _MS_HEAD + (f"<d:response><d:href>{collection}</d:href><d:propstat><d:prop><cs:getctag>ctag-1"
                            f"</cs:getctag></d:prop>{ok}</d:propstat></d:response></d:multistatus>").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, body: bytes) -> None:
            self.send_response(207)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PROPFIND(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(ctag_body)

        def do_REPORT(self) -> None:  # noqa: N802
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if b"sync-collection" in request:
                self._reply(sync_body)
                return
            parts = [fragments.get(h, b"") for h in _HREF.findall(request)]
            self._reply(_MS_HEAD + b"".join(parts) + b"</d:multistatus>")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


@contextmanager
def fake_server(objects: list[tuple[str, str]]) -> Iterator[str]:
    from tests.support.caldav_servers import free_port

    port, collection = free_port(), f"/{USER}/bench/"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_fake_server, args=(port, collection, objects, ready), daemon=True)
    process.start()
    ready.wait(120)
    try:
        yield f"http://127.0.0.1:{port}{collection}"
    finally:
        process.terminate()
        process.join(10)


# --- real servers --------------------------------------------------------------------------


@contextmanager
def radicale(objects: list[tuple[str, str]]) -> Iterator[str]:
    from tests.support.caldav_servers import free_port

    with tempfile.TemporaryDirectory(prefix="calbook-bench-radicale-") as tmp:
        workdir = Path(tmp)
        folder = workdir / "collections" / "collection-root" / USER / "bench"
        folder.mkdir(parents=True)
        (folder / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR", "D:displayname": "bench"}))
        for name, text in objects:
            (folder / name).write_text(text, newline="")
        (workdir / "users").write_text(f"{USER}:{PASSWORD}\n")
        (workdir / "config").write_text("")
        port = free_port()
        command = [
            sys.executable, "-m", "radicale", "--config", str(workdir / "config"),
            "--server-hosts", f"127.0.0.1:{port}", "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(workdir / "users"), "--auth-htpasswd-encryption", "plain",
            "--auth-delay", "0", "--storage-filesystem-folder", str(workdir / "collections"),
            "--logging-level", "error",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/{USER}/bench/"
            _wait_and_warm(url, USER, PASSWORD)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def cyrus(objects: list[tuple[str, str]]) -> Iterator[str]:
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.caldav import Direct
    from tests.support.caldav_servers import SERVERS

    with tempfile.TemporaryDirectory(prefix="calbook-bench-cyrus-") as tmp:
        server = SERVERS["cyrus"](Path(tmp))
        server.start()
        try:
            account = server.new_account()
            direct = Direct(server.port, account)
            path = direct.make_calendar("bench")
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda item: direct.put(f"{path}{item[0]}", item[1]), objects))
            url = server.url.rstrip("/") + path
            global USER, PASSWORD  # the child is told the account through its arguments
            USER, PASSWORD = account.username, account.password
            _wait_and_warm(url, account.username, account.password)
            yield url
        finally:
            server.stop()


def _wait_and_warm(url: str, username: str, password: str) -> None:
    """Wait for the server, then sync once so that its caches are built (we measure calbook, not them)."""
    from connectors.base import TransientError
    from connectors.caldav import CalDAVProvider

    deadline = time.monotonic() + 60
    while True:
        try:
            with CalDAVProvider(url, username, password, EXPERT_TZ, timeout=600, url_policy=True) as provider:
                provider.pull(url, None, WINDOW_START, WINDOW_END)
            return
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- one measured run (in a child process) -------------------------------------------------


class Phases:
    """Wall and CPU seconds of the phases, by wrapping their entry points (module attributes)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, module: Any, name: str, phase: str) -> None:
        inner: Callable[..., Any] = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.wall[phase] = self.wall.get(phase, 0.0) + time.perf_counter() - wall
                self.cpu[phase] = self.cpu.get(phase, 0.0) + time.thread_time() - cpu

        setattr(module, name, timed)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(url: str, kind: str, username: str, password: str, profile: bool) -> dict[str, Any]:
    from bench._common import scratch_store
    from booking_engine.services import calendar_sync, connections
    from connectors.caldav import CalDAVProvider
    from connectors.caldav import provider as provider_module

    phases = Phases()
    phases.wrap(provider_module, "expand_calendar", "expand")
    phases.wrap(calendar_sync, "apply_pull", "store")
    with scratch_store(kind) as store:
        made = connections.create_connection(
            store, "expert-1", "expert-1", "caldav", account=username, credentials=None, busy_calendars=[url],
            destination_calendar=None, extra_config={"url": url}, now=NOW,
        )
        requests: list[str] = []
        waiting: list[float] = []
        profiler = cProfile.Profile() if profile else None
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before, wall_before = _cpu(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with CalDAVProvider(url, username, password, EXPERT_TZ, [OWNER], timeout=600, url_policy=True) as provider:
            def observe(method: str, reply: object, seconds: float) -> None:
                requests.append(method)
                waiting.append(seconds)

            provider.http.observer = observe
            pull_wall = time.perf_counter()
            pulled = provider.pull(url, None, WINDOW_START, WINDOW_END)
            pull_wall = time.perf_counter() - pull_wall
        blocks = calendar_sync.apply_pull(
            store, made.id, url, full=pulled.full,
            upserts={k: [(i.start, i.end) for i in v] for k, v in pulled.upserts.items()},
            deleted=pulled.deleted, cursor=pulled.cursor, kept=pulled.kept, now=NOW,
        )
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - wall_before
        cpu = _cpu() - cpu_before
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: dict[str, Any] = {
        "wall": wall, "cpu": cpu, "rss_delta_mb": (rss_after - rss_before) / 1024, "rss_peak_mb": rss_after / 1024,
        "requests": len(requests), "waiting": sum(waiting), "objects": len(pulled.upserts), "blocks": blocks,
        "warnings": len(pulled.warnings), "http_xml": pull_wall - phases.wall.get("expand", 0.0),
        "expand": phases.wall.get("expand", 0.0), "expand_cpu": phases.cpu.get("expand", 0.0),
        "store": phases.wall.get("store", 0.0), "store_cpu": phases.cpu.get("store", 0.0),
        "cursor_kb": len(json.dumps(pulled.cursor)) / 1e3,
    }
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result


def _child(args: argparse.Namespace) -> None:
    result = run_once(args.url, args.store, args.user, args.password, args.profile)
    print(json.dumps(result))


def _measure(url: str, server: str, kind: str, profile: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--url", url, "--store", kind, "--user", USER,
               "--password", PASSWORD] + (["--profile"] if profile else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    if done.returncode != 0:
        raise SystemExit(f"{server}/{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print(server: str, kind: str, r: dict[str, Any]) -> None:
    print(f"{server:8} {kind:10} wall {r['wall']:6.2f} s  calbook CPU {r['cpu']:6.2f} s  "
          f"peak RSS +{r['rss_delta_mb']:5.0f} MB (peak {r['rss_peak_mb']:.0f} MB)  "
          f"{r['requests']} requests ({r['waiting']:.2f} s until answers read)  "
          f"{r['objects']} objects, {r['blocks']} blocks, cursor {r['cursor_kb']:.0f} kB")
    print(f"{'':19} phases: HTTP+XML {r['http_xml']:5.2f} s | iCalendar parse+expansion {r['expand']:5.2f} s "
          f"(CPU {r['expand_cpu']:.2f}) | store writes {r['store']:5.2f} s (CPU {r['store_cpu']:.2f})")
    if "profile" in r:
        print(r["profile"])


SERVER_STARTERS = {"fake": fake_server, "radicale": radicale, "cyrus": cyrus}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--servers", default="fake,radicale")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server and store (the best is printed)")
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile, top 25 by own time")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--user", default=USER, help=argparse.SUPPRESS)
    parser.add_argument("--password", default=PASSWORD, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    objects = calendar_objects(args.events)
    print(f"{args.events} objects, {sum(len(t) for _, t in objects) / 1e6:.1f} MB of iCalendar; "
          f"window {WINDOW_START:%Y-%m-%d} to {WINDOW_END:%Y-%m-%d}; load average {os.getloadavg()[0]:.2f}")
    for server in args.servers.split(","):
        with SERVER_STARTERS[server](objects) as url:
            for kind in args.stores.split(","):
                runs = [_measure(url, server, kind, False) for _ in range(args.repeat)]
                _print(server, kind, min(runs, key=lambda r: r["cpu"]))
            if args.profile:
                _print(server, "profiled", _measure(url, server, args.stores.split(",")[0], True))


if __name__ == "__main__":
    main()
