"""The ``calbook`` command: the composition root that wires store, API and worker together.

Subcommands import their part lazily, so ``calbook migrate`` works without the API's or
the worker's dependencies being imported.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from config.logging import setup_logging, uvicorn_log_config
from config.settings import get_settings


def _migrate() -> None:
    from booking_engine.store.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())


def cmd_migrate(_: argparse.Namespace) -> int:
    _migrate()
    print("database is at the head revision")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth import mint_token

    print(mint_token(args.user_id, get_settings(), ttl_seconds=args.ttl, email=args.email, name=args.name))
    return 0


def _uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    level = get_settings().log_level
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level=level.lower(), log_config=uvicorn_log_config(level))


def cmd_api(args: argparse.Namespace) -> int:
    _uvicorn(args.host, args.port, args.workers)
    return 0


def _celery_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", *extra]


def cmd_worker(args: argparse.Namespace) -> int:
    os.execv(sys.executable, _celery_argv("worker", "--loglevel", args.loglevel,
                                          "--concurrency", str(args.concurrency)))
    return 0  # pragma: no cover


def cmd_beat(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.data_dir / "celerybeat-schedule")
    os.execv(sys.executable, _celery_argv("beat", "--loglevel", args.loglevel, "--schedule", schedule))
    return 0  # pragma: no cover


def _die_with_parent() -> None:
    """In the worker child: get SIGTERM when ``calbook serve`` dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the signal handlers below still stop the worker on a normal shutdown


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    """API, a worker and beat in one command on the embedded default: nothing to install.

    The worker is a child process and must not outlive the command. uvicorn re-raises the
    SIGTERM/SIGINT it caught once it has shut down; these handlers turn that into SystemExit,
    so the ``finally`` below stops the worker; PR_SET_PDEATHSIG covers a hard kill.
    """
    _migrate()
    settings = get_settings()
    schedule = str(settings.data_dir / "celerybeat-schedule")
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    worker = subprocess.Popen(
        _celery_argv("worker", "--beat", "--schedule", schedule, "--loglevel", "INFO", "--concurrency", "2"),
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - runs before exec, touches no locks
    )
    try:
        _uvicorn(args.host, args.port, 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from config.demo import run_demo

    return int(run_demo())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calbook", description="Booking backend with calendar sync")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="bring the database to the head revision").set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a signed token for a user id (local use)")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.add_argument("--email")
    token.add_argument("--name")
    token.set_defaults(func=cmd_token)

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
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="the Celery beat scheduler")
    beat.add_argument("--loglevel", default="INFO")
    beat.set_defaults(func=cmd_beat)

    sub.add_parser("demo", help="offline demo against a local Radicale").set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging(get_settings().log_level)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
