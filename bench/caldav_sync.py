"""Benchmark: CalDAV pull of a large calendar on a local Radicale.

Prints the first (full) sync's wall time and peak Python memory (tracemalloc), then the wall
time and HTTP request count of incremental syncs after 1 and 10 changed events. The target is
an incremental sync under 300 ms whose request count grows with the changes, not with the
calendar size.

    .venv/bin/python bench/caldav_sync.py            # 10,000 events
    .venv/bin/python bench/caldav_sync.py --events 2000

The events are written straight into Radicale's storage folder before it starts (10,000 PUTs
would benchmark Radicale, not us); the changes go through HTTP like any client's would.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.caldav import CalDAVProvider  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=180)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _event(n: int) -> str:
    start = WINDOW_START + timedelta(hours=7 + (n * 37) % (24 * 170))
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    end = (start + timedelta(minutes=45)).strftime("%Y%m%dT%H%M%SZ")
    rule = "RRULE:FREQ=WEEKLY;COUNT=20\r\n" if n % 10 == 0 else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:bench-{n}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{stamp}\r\nDTEND:{end}\r\n{rule}"
        f"SUMMARY:Event {n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _seed(storage: Path, events: int) -> str:
    folder = storage / "collection-root" / USER / "bench"
    folder.mkdir(parents=True)
    (folder / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR", "D:displayname": "bench"}))
    for n in range(events):
        (folder / f"bench-{n}.ics").write_text(_event(n), newline="")
    return f"/{USER}/bench/"


def _start_radicale(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    users = workdir / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    config = workdir / "config"
    config.write_text("")
    command = [
        sys.executable, "-m", "radicale", "--config", str(config),
        "--server-hosts", f"127.0.0.1:{port}",
        "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(users),
        "--auth-htpasswd-encryption", "plain", "--auth-delay", "0",
        "--storage-filesystem-folder", str(workdir / "collections"), "--logging-level", "error",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("OPTIONS", "/")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("radicale did not start")


def _put(port: int, path: str, body: str) -> None:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("PUT", path, body=body.encode(), headers={"Authorization": f"Basic {token}",
                                                            "Content-Type": "text/calendar"})  # fmt: skip
    status = conn.getresponse().status
    conn.close()
    if status not in (201, 204):
        raise SystemExit(f"PUT {path} failed: {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="calbook-bench-") as tmp:
        workdir = Path(tmp)
        path = _seed(workdir / "collections", args.events)
        port = _free_port()
        radicale = _start_radicale(workdir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            calendar_id = base + path
            # warm Radicale's own item cache so the first sync measures us, not its cache build
            with CalDAVProvider(base + "/", USER, PASSWORD, "Europe/Berlin", timeout=600, url_policy=True) as warm:
                warm.pull(calendar_id, None, WINDOW_START, WINDOW_END)

            with CalDAVProvider(
                base + "/", USER, PASSWORD, "Europe/Berlin", ["bench@example.org"], url_policy=True
            ) as provider:
                requests: list[str] = []
                server_seconds: list[float] = []

                def count(method: str, reply: object, seconds: float) -> None:
                    requests.append(method)
                    server_seconds.append(seconds)

                provider.http.observer = count
                tracemalloc.start()
                began = time.perf_counter()
                first = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
                first_seconds = time.perf_counter() - began
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                blocks = sum(len(v) for v in first.upserts.values())
                print(f"events: {args.events}  busy blocks: {blocks}  warnings: {len(first.warnings)}")
                cursor_kb = len(json.dumps(first.cursor)) / 1e3
                print(f"first sync: {first_seconds * 1000:.0f} ms, {len(requests)} requests, "
                      f"peak traced memory {peak / 1e6:.1f} MB, cursor {cursor_kb:.0f} kB")  # fmt: skip

                cursor = first.cursor
                for changes in (1, 10):
                    for n in range(changes):
                        _put(
                            port,
                            f"{path}bench-{n * 7 + 1}.ics",
                            _event(n * 7 + 1).replace("Event", f"Moved{changes}"),
                        )
                    requests.clear()
                    server_seconds.clear()
                    began = time.perf_counter()
                    result = provider.pull(calendar_id, cursor, WINDOW_START, WINDOW_END)
                    elapsed = time.perf_counter() - began
                    cursor = result.cursor
                    waiting = sum(server_seconds)
                    verdict = "OK" if elapsed < 0.3 else "SLOW"
                    print(f"incremental sync after {changes} change(s): {elapsed * 1000:.0f} ms "
                          f"(of which {waiting * 1000:.0f} ms waiting for Radicale, "
                          f"{(elapsed - waiting) * 1000:.0f} ms in calbook), "
                          f"{len(requests)} requests ({', '.join(requests)}), "
                          f"{len(result.upserts)} upserted [{verdict} vs 300 ms target]")  # fmt: skip
        finally:
            radicale.terminate()
            radicale.wait(timeout=10)


if __name__ == "__main__":
    main()
