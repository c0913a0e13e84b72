"""Shared fixtures: a migrated store on SQLite and on a throwaway PostgreSQL database.

PostgreSQL (``CALBOOK_TEST_PG_URL``, default the local server) is required when ``CI`` is
set: then an unreachable server fails the run instead of skipping the PostgreSQL half.
Redis (``CALBOOK_TEST_REDIS_URL``) follows the same rule.

The fixtures more than one test directory uses live here too: the real CalDAV servers
(``caldav_server`` is parametrised over every server; ``tests/sync`` narrows it to Radicale),
the fault proxy in front of them, a local ICS feed, and worker processes (``start_worker``).
The helpers the tests share are in ``tests.support``.
"""


from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from booking_engine.store.db import Store
from booking_engine.store.migrate import upgrade
from tests.support.caldav import SERVER_NAMES, Direct, ServerPool
from tests.support.caldav_servers import Account, CalDAVServer, FaultProxy
from tests.support.db import (
    PG_ADMIN_URL,
    REDIS_URL,
    _unreachable,
    truncate_all,
)
from tests.support.feed_server import FeedState
from tests.support.rate_limits import SharedStore
from tests.support.worker import ENCRYPTION_KEY, FAST_KNOBS, LOCAL_URLS, ROOT, WorkerProcess


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped at the end."""
    name = f"calbook_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "unreachable"
        admin.dispose()
        _unreachable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store.from_url(pg_url)
    yield store
    store.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'calbook.sqlite'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of each kind; tests using it run on both."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    url = request.getfixturevalue("pg_url")
    truncate_all(request.getfixturevalue("pg_store"))
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.from_url(db_url)
    yield s
    s.dispose()


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _unreachable("Redis", exc)
    return REDIS_URL


@pytest.fixture(params=["redis", "sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest) -> SharedStore:
    """Where the provider rate limiter's buckets live (kind and URL), on each real store, with a key
    prefix no other test uses: the Redis keys of one test never meet another's."""
    prefix = f"calbook:test:{uuid.uuid4().hex[:12]}:"
    if request.param == "redis":
        return SharedStore("redis", request.getfixturevalue("redis_url"), prefix)
    if request.param == "sqlite":
        return SharedStore("database", request.getfixturevalue("sqlite_url"), prefix)
    return SharedStore("database", request.getfixturevalue("pg_url"), prefix)


@pytest.fixture(scope="session")
def caldav_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session", params=SERVER_NAMES)
def caldav_server(request: pytest.FixtureRequest, caldav_servers: ServerPool) -> CalDAVServer:
    return caldav_servers.get(request.param)


@pytest.fixture(scope="session")
def radicale(caldav_servers: ServerPool) -> CalDAVServer:
    """Radicale alone, for tests about calbook's own glue rather than about servers."""
    return caldav_servers.get("radicale")


@pytest.fixture(scope="session")
def _proxy_server(caldav_server: CalDAVServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(caldav_server.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(_proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    _proxy_server.reset()
    yield _proxy_server
    _proxy_server.reset()


@pytest.fixture
def account(caldav_server: CalDAVServer) -> Account:
    """A fresh account: no test sees another's calendars or UIDs."""
    return caldav_server.new_account()


@pytest.fixture
def direct(caldav_server: CalDAVServer, account: Account) -> Direct:
    return Direct(caldav_server.port, account)


@pytest.fixture
def feed_server() -> Iterator[tuple[str, FeedState]]:
    state = FeedState()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            state.requests.append(dict(self.headers.items()))
            if state.delay:
                time.sleep(state.delay)
            if state.redirect and self.path != urlsplit(state.redirect).path:
                self.send_response(302)
                self.send_header("Location", state.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if state.status != 200:
                self.send_response(state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            # RFC 9110: If-None-Match, when present, decides; If-Modified-Since only otherwise.
            if "If-None-Match" in self.headers:
                fresh = bool(state.etag) and self.headers["If-None-Match"] == state.etag
            else:
                fresh = (
                    bool(state.last_modified) and self.headers.get("If-Modified-Since") == state.last_modified
                )
            if fresh:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            if state.etag:
                self.send_header("ETag", state.etag)
            if state.last_modified:
                self.send_header("Last-Modified", state.last_modified)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feeds/team.ics", state
    server.shutdown()
    server.server_close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        env: dict[str, str], beat: bool = True, concurrency: int = 2, name: str = "w", lean: bool = True,
        node: str | None = None, queues: str | None = None, pool: str | None = None,
    ) -> WorkerProcess:
        """``lean`` drops gossip, mingle and heartbeat (quicker start); ``lean=False`` starts the
        worker as ``calbook worker`` does in production, with Celery's defaults. ``node`` fixes
        the node name (``<node>@<host>``), as a supervisor restarting the same worker does."""
        full = {**os.environ, **FAST_KNOBS, **LOCAL_URLS, "CALBOOK_ENCRYPTION_KEY": ENCRYPTION_KEY, **env}
        data = Path(full["CALBOOK_DATA_DIR"])
        data.mkdir(parents=True, exist_ok=True)
        log_path = tmp_path / f"{name}-{len(started)}.log"
        argv = [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "--loglevel", "INFO",
                "--concurrency", str(concurrency), "--hostname", f"{node or name + str(len(started))}@%h"]
        if lean:
            argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if queues is not None:  # short names, as ``calbook worker --queues`` takes them
            from config.task_sender import resolve_queues

            argv += ["--queues", ",".join(resolve_queues(queues))]
        if pool is not None:
            argv += ["--pool", pool]
            full["CALBOOK_WORKER_POOL"] = pool
        if beat:
            argv += ["--beat", "--schedule", str(data / f"beat-{len(started)}")]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        wp = WorkerProcess(proc, log_path)
        started.append(wp)
        return wp

    yield start
    for wp in started:
        wp.stop()
