"""Benchmark: outbox events per second delivered as signed webhooks, Redis broker, real workers.

A scratch PostgreSQL database gets N ``booking.created`` outbox events for one expert with one
webhook subscription; real ``celery worker`` processes (the Redis database of
``CALBOOK_BENCH_REDIS_URL``, else ``CALBOOK_TEST_REDIS_URL``, emptied before and after) dispatch
the outbox, fan out and POST to a local receiver that verifies every signature. Prints events/s
from the first kick to the last event received, and checks that every event arrived, each with
a valid signature.

    .venv/bin/python bench/outbox.py                       # 2,000 events, 2 workers x 2 processes
    .venv/bin/python bench/outbox.py --events 500 --workers 1 --concurrency 2

Bounded: gives up after --timeout seconds (default 180). Cleans up workers, Redis keys and DB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench._common import scratch_store  # noqa: E402

# The Redis database of whoever runs this (the same setting as the tests): never someone else's.
REDIS_URL = os.environ.get("CALBOOK_BENCH_REDIS_URL", os.environ.get("CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.keys: set[str] = set()
        self.bad = 0
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None


def serve(rx: Receiver) -> ThreadingHTTPServer:
    from worker.notifications.webhooks import verify

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(rx.secret, self.headers.get("X-Calbook-Signature", ""), raw)
            with rx.lock:
                now = time.perf_counter()
                rx.first = rx.first or now
                rx.last = now
                if ok:
                    rx.keys.add(self.headers.get("X-Calbook-Event-Id", ""))
                else:
                    rx.bad += 1
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()

    key = Fernet.generate_key().decode()
    os.environ["CALBOOK_ENCRYPTION_KEY"] = key
    from booking_engine.services import webhook_subscriptions
    from booking_engine.store.tables import outbox
    from config.settings import Settings
    from connectors.secrets import encrypt_json

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    procs: list[subprocess.Popen[bytes]] = []
    with scratch_store("postgresql") as store, tempfile.TemporaryDirectory() as tmp:
        url = store.engine.url.render_as_string(hide_password=False)
        rx = Receiver("")
        server = serve(rx)
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        key = Settings().resolved_encryption_key()
        created = webhook_subscriptions.create_subscription(
            store, "bench-expert", hook, ["booking.created"], encrypt=lambda s: encrypt_json({"secret": s}, key))
        rx.secret = created["secret"]
        now = datetime.now(UTC)
        rows = [
            {"event_id": str(uuid.uuid4()), "event_type": "booking.created", "aggregate_id": f"b-{i}",
             "payload": {"booking": {"id": f"b-{i}", "expertId": "bench-expert", "userId": "bench-user"}},
             "created_at": now}
            for i in range(args.events)
        ]
        env = {**os.environ, "CALBOOK_DATABASE_URL": url, "CALBOOK_BROKER_URL": REDIS_URL, "CALBOOK_DATA_DIR": tmp,
               "CALBOOK_WORKER_OUTBOX_INTERVAL_SECONDS": "1", "CALBOOK_WORKER_WEBHOOK_INTERVAL_SECONDS": "1",
               "CALBOOK_LOG_LEVEL": "WARNING",
               "CALBOOK_ALLOW_PRIVATE_URLS": "true"}  # the receiver listens on 127.0.0.1
        try:
            for n in range(args.workers):
                argv = [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "--loglevel",
                        "WARNING", "--concurrency", str(args.concurrency), "--hostname", f"bench{n}@%h",
                        "--without-gossip", "--without-mingle", "--without-heartbeat"]
                if n == 0:
                    argv += ["--beat", "--schedule", f"{tmp}/beat"]
                procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True))
            time.sleep(4)  # let the workers boot; the measured clock starts at the kick below
            with store.write() as conn:
                conn.execute(insert(outbox), rows)
            os.environ.update({k: v for k, v in env.items() if k.startswith("CALBOOK_")})
            from worker.app import celery_app

            started = time.perf_counter()
            for _ in range(args.workers * args.concurrency):
                celery_app.send_task("calbook.outbox.dispatch")
            deadline = started + args.timeout
            while time.perf_counter() < deadline:
                with rx.lock:
                    if len(rx.keys) >= args.events:
                        break
                time.sleep(0.05)
            elapsed = (rx.last or time.perf_counter()) - started
            got = len(rx.keys)
            print(f"{got}/{args.events} events delivered in {elapsed:.2f} s: {got / elapsed:.0f} events/s "
                  f"({args.workers} worker(s) x {args.concurrency} processes, Redis, PostgreSQL); "
                  f"bad signatures: {rx.bad}")
            if got < args.events:
                raise SystemExit("not every event arrived before the timeout")
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGQUIT)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            server.shutdown()
            broker.flushdb()


if __name__ == "__main__":
    main()
