"""The ``calbook`` command: the composition root that wires store, API and worker together.

Subcommands import their part lazily, so ``calbook migrate`` works without the API's or
the worker's dependencies being imported. Arguments are parsed before the settings are read,
so ``--help`` and ``--version`` work whatever the environment holds, and a bad setting is one
clear line (``calbook: CALBOOK_LOG_LEVEL: ...``) and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from config.admin import add_admin_commands
from config.apikey import add_apikey_commands
from config.logging import setup_logging
from config.settings import Settings
from config.version import VERSION

log = logging.getLogger("calbook")

WORKER_METRICS_PORT = 9101


def _migrate(settings: Settings) -> str:
    from booking_engine.store.migrate import current_revision, upgrade

    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    before = current_revision(url)
    upgrade(url)
    after = current_revision(url)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return after or "base"


def cmd_migrate(_: argparse.Namespace, settings: Settings) -> int:
    revision = _migrate(settings)
    print(f"database is at the head revision ({revision})")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from api.auth import mint_token

    if args.link:
        # A sign-in link for the pages (docs/web.md#sign-in): short-lived whatever --ttl says.
        ttl = min(args.ttl, settings.web_login_link_max_seconds)
        token = mint_token(args.user_id, settings, ttl_seconds=ttl, email=args.email, name=args.name)
        print(f"{settings.public_base_url.rstrip('/')}/login?token={token}")
        return 0
    print(mint_token(args.user_id, settings, ttl_seconds=args.ttl, email=args.email, name=args.name))
    return 0


def cmd_keygen(_: argparse.Namespace, __: Settings) -> int:
    """Fresh secrets for a deployment, as ``.env`` lines (docs/operations.md#configuration)."""
    import secrets

    from cryptography.fernet import Fernet

    print(f"CALBOOK_JWT_SECRET={secrets.token_urlsafe(48)}")
    print(f"CALBOOK_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from config.processes import handle_shutdown_signals, metrics_directory, run_uvicorn

    handle_shutdown_signals()
    with metrics_directory():
        run_uvicorn(settings, args.host, args.port, args.workers)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from config.processes import (
        celery_argv,
        lower_priority,
        metrics_directory,
        run_celery,
        worker_nice,
        worker_options,
    )

    try:
        queues, pool, concurrency = worker_options(settings, args.queues, args.pool, args.concurrency)
    except ValueError as exc:
        print(f"calbook: --queues: {exc}", file=sys.stderr)
        return 2
    os.environ["CALBOOK_WORKER_POOL"] = pool  # worker.wiring sizes the database pool by it
    niceness = lower_priority(worker_nice(settings, queues, args.nice))
    log.info("worker serves %s on %s x%d at nice %d", ",".join(queues), pool, concurrency, niceness)
    with metrics_directory():
        extra = ["--queues", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency)]
        if args.name:
            extra += ["--hostname", f"{args.name}@%h"]
        if args.beat:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            extra += ["--beat", "--schedule", str(settings.data_dir / "celerybeat-schedule")]
        argv = celery_argv(settings, "worker", *extra)
        if args.metrics_port is not None:
            os.environ["CALBOOK_WORKER_METRICS_PORT"] = str(args.metrics_port)
        else:
            os.environ.setdefault("CALBOOK_WORKER_METRICS_PORT", str(WORKER_METRICS_PORT))
        return run_celery(argv)


def cmd_beat(_: argparse.Namespace, settings: Settings) -> int:
    from config.processes import celery_argv, run_celery

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.data_dir / "celerybeat-schedule")
    return run_celery(celery_argv(settings, "beat", "--schedule", schedule))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """API, a worker and beat in one command on the embedded default: nothing to install.

    The worker is a child process and must not outlive the command: a requested shutdown
    unwinds through the ``finally`` below, which stops it; PR_SET_PDEATHSIG covers a hard kill.
    """
    from config.processes import (
        EMBEDDED_WORKERS,
        declare_embedded_queue,
        handle_shutdown_signals,
        metrics_directory,
        run_uvicorn,
        start_embedded_worker,
        stop_child,
    )

    # The embedded broker and beat's schedule live in the data directory even when the database
    # and both secrets are elsewhere.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    settings.resolved_jwt_secret()  # generated (and announced) once here, not by each process
    settings.resolved_encryption_key()
    declare_embedded_queue(settings)
    handle_shutdown_signals()
    with metrics_directory():
        workers = [start_embedded_worker(settings, options) for options in EMBEDDED_WORKERS]
        try:
            run_uvicorn(settings, args.host, args.port, 1, process="serve")
        finally:
            for worker in workers:
                stop_child(worker)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from booking_engine.clock import utcnow
    from config.status import collect, render_json, render_text

    status = collect(settings)
    print(render_json(status, VERSION, utcnow()) if args.json else render_text(status, VERSION))
    return 0 if status.ok else 1


def cmd_demo(_: argparse.Namespace, __: Settings) -> int:
    import importlib.util

    if importlib.util.find_spec("radicale") is None:
        print("calbook demo needs Radicale: pip install 'calbook[demo]'", file=sys.stderr)
        return 1
    from config.demo import run_demo

    return int(run_demo())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calbook", description="Booking backend with calendar sync")
    parser.add_argument("--version", action="version", version=f"calbook {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="bring the database to the head revision").set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a signed token for a user id (local use)")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--link", action="store_true",
                       help="print a sign-in link for the booking pages instead (lives at most "
                            "CALBOOK_WEB_LOGIN_LINK_MAX_SECONDS)")
    token.set_defaults(func=cmd_token)

    sub.add_parser(
        "keygen", help="print a fresh JWT secret and encryption key as .env lines",
    ).set_defaults(func=cmd_keygen)

    serve = sub.add_parser("serve", help="API + worker + beat on the embedded default, migrating first")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    api = sub.add_parser("api", help="the production API server")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=2)
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="a Celery worker")
    worker.add_argument("--queues", default=None,
                        help="comma-separated: sync, push, notify, default, or all (default: CALBOOK_WORKER_QUEUES, "
                             "all); docs/worker.md#queues")
    worker.add_argument("--pool", choices=("prefork", "threads"), default=None,
                        help="default: threads when serving only sync and push, else prefork")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="default: CALBOOK_WORKER_IO_CONCURRENCY (8) threads, or 2 processes")
    worker.add_argument("--name", default=None, help="node name, NAME@host (default: celery@host)")
    worker.add_argument("--nice", type=int, default=None, choices=range(0, 20), metavar="0-19",
                        help="lower the worker's CPU priority by this much (default: CALBOOK_WORKER_NICE, else 10 "
                             "when serving only sync and push, 0 otherwise); docs/worker.md#cpu-priority")
    worker.add_argument("--beat", action="store_true", help="run the beat scheduler inside (one worker only)")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="serve the worker's metrics on this port (default: CALBOOK_WORKER_METRICS_PORT)")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("beat", help="the Celery beat scheduler").set_defaults(func=cmd_beat)

    status = sub.add_parser(
        "status", help="database, broker, workers, outbox, deliveries, connections (exit 1: not ok)",
    )
    status.add_argument("--json", action="store_true", help="one JSON document instead of text")
    status.set_defaults(func=cmd_status)

    add_admin_commands(sub)
    add_apikey_commands(sub)

    sub.add_parser("demo", help="offline demo against a local Radicale").set_defaults(func=cmd_demo)
    return parser


def _settings_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = "CALBOOK_" + "_".join(str(part) for part in item["loc"]).upper()
        lines.append(f"calbook: {name}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(_settings_error(error), file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format, process=args.command)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
