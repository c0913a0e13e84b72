"""Benchmark: what calbook's CalDAV sync costs on each real server of the test suite.

For Radicale, Cyrus IMAP, DAViCal and SabreDAV (started as the tests start them, from their
Debian packages, see ``tests/support/caldav_servers``) it prints which sync feature calbook ended up
using, and the HTTP requests and wall time of discovery, a first sync, an incremental sync
after one change, one after nothing changed, and the daily reconcile.

    .venv/bin/python bench/caldav_servers.py                 # 300 events per calendar
    .venv/bin/python bench/caldav_servers.py --events 1000 --servers cyrus,davical

The events are written with plain PUTs (that part is not measured). DAViCal needs PostgreSQL
(``CALBOOK_TEST_PG_URL``, default the local server); Cyrus must start as root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.caldav import CalDAVProvider  # noqa: E402
from tests.support.caldav import Direct, vevent  # noqa: E402
from tests.support.caldav_servers import SERVERS, ServerUnavailable  # noqa: E402

WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=180)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _measure(provider: CalDAVProvider, step: Callable[[], Any]) -> tuple[Any, list[str], float]:
    seen: list[str] = []
    provider.http.observer = lambda method, reply, seconds: seen.append(f"{method} {reply.status}")
    began = time.perf_counter()
    result = step()
    provider.http.observer = None
    return result, seen, time.perf_counter() - began


def run(name: str, events: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"calbook-bench-{name}-"))
    server = SERVERS[name](workdir)
    try:
        server.start()
    except ServerUnavailable as exc:
        print(f"{name}: cannot run here ({exc})")
        server.stop()
        return
    try:
        account = server.new_account()
        direct = Direct(server.port, account)
        calendar_path = direct.make_calendar("bench")
        for n in range(events):
            start = WINDOW_START + timedelta(hours=7 + (n * 37) % (24 * 170))
            direct.put(f"{calendar_path}e{n}.ics", vevent(f"bench-{n}", _stamp(start),
                                                         _stamp(start + timedelta(minutes=45))))
        calendar_id = server.url.rstrip("/") + calendar_path
        with CalDAVProvider(server.url.rstrip("/") + server.root, account.username, account.password, "UTC",
                            url_policy=["127.0.0.1"]) as provider:
            calendars, discovery, t_disc = _measure(provider, provider.list_calendars)
            first, first_reqs, t_first = _measure(
                provider, lambda: provider.pull(calendar_id, None, WINDOW_START, WINDOW_END))
            direct.put(f"{calendar_path}e1.ics", vevent("bench-1", "20250610T100000Z", "20250610T110000Z"))
            changed, changed_reqs, t_changed = _measure(
                provider, lambda: provider.pull(calendar_id, first.cursor, WINDOW_START, WINDOW_END))
            _, idle_reqs, t_idle = _measure(
                provider, lambda: provider.pull(calendar_id, changed.cursor, WINDOW_START, WINDOW_END))
            _, reconcile_reqs, t_rec = _measure(
                provider, lambda: provider.reconcile(calendar_id, changed.cursor, WINDOW_START, WINDOW_END))
        mode = "sync-collection" if first.cursor["mode"] == "sync" else "ctag/ETag fallback"
        print(f"{name}: {mode}; {len(calendars)} calendars, {len(first.upserts)} objects")
        for label, reqs, seconds in (("discovery", discovery, t_disc), ("first sync", first_reqs, t_first),
                                     ("incremental, 1 change", changed_reqs, t_changed),
                                     ("incremental, no change", idle_reqs, t_idle),
                                     ("reconcile", reconcile_reqs, t_rec)):
            print(f"  {label:24} {len(reqs):3} requests {seconds * 1000:7.0f} ms  ({', '.join(reqs)})")
        assert len(changed.upserts) == 1, changed.upserts
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()
    for name in args.servers.split(","):
        run(name.strip(), args.events)


if __name__ == "__main__":
    main()
