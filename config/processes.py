"""The long-running processes of calbook: ``serve``, ``api``, ``worker`` and ``beat``.

Each one logs the same way (``config.logging``: uvicorn's worker processes get the same
configuration through ``log_config``, Celery through its ``setup_logging`` signal) and treats a
requested shutdown (SIGTERM, SIGINT) as success: it stops cleanly and exits 0
(docs/operations.md#supervising-the-processes).

Metrics (docs/operations.md#metrics) are kept with ``prometheus_client``'s multiprocess mode,
in a fresh directory per run (``PROMETHEUS_MULTIPROC_DIR``, unless the operator set one): the
two uvicorn workers of ``calbook api --workers 2`` count into it and ``/metrics`` adds them up;
under ``calbook serve`` the worker counts into the same directory, so one ``/metrics`` shows all.
The variable must be set before ``prometheus_client`` is imported, hence the lazy imports here.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from config.settings import Settings
from config.version import VERSION

log = logging.getLogger("calbook")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _exit_cleanly(signum: int, _frame: object) -> None:
    """A requested shutdown is not a failure: unwind (``finally`` blocks run) and exit 0."""
    raise SystemExit(0)


def handle_shutdown_signals() -> None:
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh multiprocess metrics directory for this run, removed afterwards (or the operator's own)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    path = tempfile.mkdtemp(prefix="calbook-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _log_config(settings: Settings, process: str) -> dict[str, Any]:
    from config.logging import logging_config

    return logging_config(settings.log_level, settings.log_format, process)


def announce(settings: Settings, host: str, port: int, workers: int) -> None:
    """What a newcomer needs next: where the API is, its docs, how to get a token."""
    every_interface = host in ("0.0.0.0", "::", "")
    base = f"http://{'127.0.0.1' if every_interface else host}:{port}"
    notes = ([f"listening on every interface, port {port}"] if every_interface else []) + (
        [f"{workers} processes"] if workers > 1 else [])
    processes = f" ({', '.join(notes)})" if notes else ""
    log.info(
        "calbook %s: API at %s%s, docs at %s/docs, metrics at %s/metrics; sign a token with `calbook token USER_ID`",
        VERSION, base, processes, base, base, extra={"data_dir": str(settings.data_dir)},
    )


def run_uvicorn(settings: Settings, host: str, port: int, workers: int, process: str = "api") -> None:
    """uvicorn on ``api.app:create_app``; the announcement is logged once the socket is bound."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                announce(settings, host, port, 1)

    config = uvicorn.Config(
        "api.app:create_app", factory=True, host=host, port=port, workers=workers, proxy_headers=True,
        log_config=_log_config(settings, process), log_level=settings.log_level.lower(),
        access_log=False,  # calbook's own access log (api.metrics) has the route and the duration
    )
    if workers > 1:
        sock = config.bind_socket()
        announce(settings, host, port, workers)
        Multiprocess(config, sockets=[sock]).run()
        return
    server = AnnouncingServer(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's own "startup failed" code: the reason is logged above


def celery_argv(settings: Settings, *extra: str) -> list[str]:
    # -q: no banner; what it says (broker, concurrency) is logged in calbook's format instead.
    return [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "-q", *extra,
            "--loglevel", settings.log_level]


IO_QUEUES = frozenset({"calbook.sync", "calbook.push"})
"""Queues whose tasks wait on calendar servers: a worker serving only these runs a thread pool."""


def worker_options(
    settings: Settings, queues: str | None, pool: str | None, concurrency: int | None,
) -> tuple[list[str], str, int]:
    """The queues, pool and concurrency of ``calbook worker`` (docs/worker.md#pools).

    ``queues`` (default ``CALBOOK_WORKER_QUEUES``, ``all``) are short names (``sync,push``) or
    queue names. The pool defaults to ``threads`` when every queue served is I/O-bound (sync,
    push: the tasks wait on calendar servers, a thread waiting costs little), with
    ``CALBOOK_WORKER_IO_CONCURRENCY`` threads; any other mix runs ``prefork`` with 2 processes.
    """
    from config.task_sender import resolve_queues

    served = resolve_queues(queues if queues is not None else settings.worker.queues)
    chosen = pool or ("threads" if set(served) <= IO_QUEUES else "prefork")
    size = concurrency or (settings.worker.io_concurrency if chosen == "threads" else 2)
    return served, chosen, size


IO_NICE = 10
"""The nice increment of a worker serving only I/O queues, unless told otherwise."""


def worker_nice(settings: Settings, served: Sequence[str], asked: int | None) -> int:
    """The CPU priority a worker lowers itself to (docs/worker.md#cpu-priority).

    A sync or push task is mostly a wait on a calendar server, and a late sync costs staleness
    measured in minutes; an e-mail or webhook is waited for by a person. When the machine's CPU
    is saturated (a cold start of thousands of first syncs) the kernel should run the e-mail
    first, so a worker serving only sync and push runs at ``nice`` 10 unless ``--nice`` or
    ``CALBOOK_WORKER_NICE`` says otherwise; any other worker keeps the priority it was given.
    """
    if asked is not None:
        return asked
    if settings.worker.nice >= 0:
        return settings.worker.nice
    return IO_NICE if set(served) <= IO_QUEUES else 0


def lower_priority(increment: int) -> int:
    """Lower this process's CPU priority (its pool children inherit it); the niceness now."""
    return os.nice(increment) if increment > 0 else os.nice(0)


def run_celery(argv: list[str]) -> int:
    """Run a Celery command in this process, so the metrics directory is cleaned up after it."""
    from celery.bin.celery import celery as celery_command

    try:
        celery_command.main(args=argv[3:], prog_name="celery", standalone_mode=True)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def _die_with_parent() -> None:
    """In the worker child: get SIGTERM when ``calbook serve`` dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the shutdown below still stops the worker on a normal exit


def declare_embedded_queue(settings: Settings) -> None:
    """Create the task queue in a fresh embedded broker before anyone else uses it.

    kombu's SQLAlchemy transport creates a queue's row on first use, guarded by a lock of its
    process only: on a first run, the worker's consumer, its beat and the API's first kick race
    for it, and the loser's ``UNIQUE constraint failed: kombu_queue.name`` kills the worker.
    Declared once here, before they start, the row exists and they all find it.
    """
    broker_url = settings.resolved_broker_url()
    if not broker_url.startswith("sqla+"):
        return
    from kombu import Connection

    from config.task_sender import QUEUES

    with Connection(broker_url, transport_options={"connect_args": {"timeout": 30}}) as connection:
        for queue in QUEUES.values():  # worker/app.py: task_queues
            connection.default_channel.queue_declare(queue=queue)


EMBEDDED_WORKERS: tuple[tuple[str, ...], ...] = (
    ("--beat", "--queues", "notify,default", "--concurrency", "2", "--name", "calbook"),
    ("--queues", "sync,push", "--concurrency", "4", "--name", "calbook-io"),
)
"""The two workers of ``calbook serve``: e-mail, webhooks, the periodic jobs (with beat) on
prefork; calendar sync and push on four threads (few writers for the embedded SQLite file).
Two processes, so that a sync backlog never delays an e-mail (docs/worker.md#queues)."""


def start_embedded_worker(settings: Settings, options: Sequence[str]) -> subprocess.Popen[bytes]:
    """A worker of ``calbook serve``: a child that must not outlive it.

    In a session of its own, so that Ctrl-C in the terminal reaches ``serve`` only, which then
    stops the worker with one SIGTERM (a warm shutdown) instead of every pool process getting
    the signal at once; PR_SET_PDEATHSIG covers a hard kill of ``serve``.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "config.cli", "worker", *options, "--metrics-port", "0"],
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - runs before exec, touches no locks
        start_new_session=True,
    )


def stop_child(child: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
