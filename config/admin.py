"""``calbook admin ...``: the chores that would otherwise need SQL (docs/operations.md#admin-commands).

Each subcommand is a thin caller of the function the worker runs for the same job, so doing a
chore by hand and the worker doing it cannot disagree.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from config.settings import Settings


def _store(settings: Settings):  # type: ignore[no-untyped-def]
    from booking_engine.store.db import Store

    return Store.from_url(settings.resolved_database_url())


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    """The nightly retention prune, now (``CALBOOK_WORKER_RETENTION_DAYS`` unless ``--days``)."""
    from worker import retention

    store = _store(settings)
    try:
        keep = timedelta(days=args.days) if args.days is not None else None
        pruned = retention.prune(store, keep=keep)
    finally:
        store.dispose()
    print(f"pruned {pruned.outbox} dispatched outbox events, {pruned.deliveries} finished webhook deliveries, "
          f"{pruned.notifications} e-mail keys")
    return 0


def add_admin_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    admin = sub.add_parser("admin", help="chores: prune old data now (see docs/operations.md#admin-commands)")
    chores = admin.add_subparsers(dest="chore", required=True)

    prune = chores.add_parser("prune", help="delete dispatched outbox rows, finished deliveries and old e-mail keys")
    prune.add_argument("--days", type=float, default=None, help="keep this many days (default: the retention)")
    prune.set_defaults(func=cmd_prune)
