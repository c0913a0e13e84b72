"""``calbook admin ...``: the chores that would otherwise need SQL (docs/operations.md#admin-commands).

Each subcommand is a thin caller of the function the worker runs for the same job, so doing a
chore by hand and the worker doing it cannot disagree.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from booking_engine.store.db import Store
from config.settings import Settings


def _store(settings: Settings) -> Store:
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


def cmd_resend(args: argparse.Namespace, settings: Settings) -> int:
    """Send an event again: the handlers given up on, the failed webhook deliveries (``--delivered``:
    the delivered ones too). E-mails already sent are never sent twice."""
    from worker import kick, outbox
    from worker.notifications.webhooks import resend_deliveries

    store = _store(settings)
    try:
        handlers = outbox.retry_given_up(store, args.event_id)
        if handlers is None:
            print(f"calbook: no outbox event {args.event_id} (never written, or pruned after the retention window)",
                  file=sys.stderr)
            return 1
        deliveries = resend_deliveries(store, args.event_id, delivered=args.delivered)
    finally:
        store.dispose()
    if handlers:
        kick.kick_outbox()
    if deliveries:
        kick.kick_webhooks()
    again = ", ".join(handlers) if handlers else "none (every handler had finished)"
    print(f"event {args.event_id}: handlers due again: {again}; webhook deliveries due again: {deliveries}")
    return 0


def cmd_rotate_key(_: argparse.Namespace, settings: Settings) -> int:
    """Re-encrypt every secret at rest with the first key of ``CALBOOK_ENCRYPTION_KEY``."""
    from booking_engine.services.secrets import reencrypt_all
    from connectors.secrets import rotate_token

    keys = settings.resolved_encryption_key()
    store = _store(settings)
    try:
        rotation = reencrypt_all(store, lambda token: rotate_token(token, keys))
    finally:
        store.dispose()
    parts = ", ".join(f"{n} {table}" for table, n in rotation.rewritten.items())
    print(f"re-encrypted {rotation.total} secrets with the first key ({parts})")
    lost = {table: n for table, n in rotation.unreadable.items() if n}
    if lost:
        print("calbook: no configured key opens " + ", ".join(f"{n} in {table}" for table, n in lost.items())
              + ": keep the key they were encrypted with in CALBOOK_ENCRYPTION_KEY and run this again",
              file=sys.stderr)
        return 1
    return 0


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser("admin", help="chores: re-send an event, rotate the key, prune old data now "
                           "(docs/operations.md#admin-commands)")
    chores = admin.add_subparsers(dest="chore", required=True)

    prune = chores.add_parser("prune", help="delete dispatched outbox rows, finished deliveries and old e-mail keys")
    prune.add_argument("--days", type=float, default=None, help="keep this many days (default: the retention)")
    prune.set_defaults(func=cmd_prune)

    resend = chores.add_parser("resend", help="send an outbox event again (given-up handlers, failed webhooks)")
    resend.add_argument("event_id", help="the event's id (X-Calbook-Event-Id, the webhook body's id)")
    resend.add_argument("--delivered", action="store_true",
                        help="also re-send webhook deliveries the receiver acknowledged (it lost them)")
    resend.set_defaults(func=cmd_resend)

    chores.add_parser(
        "rotate-key", help="re-encrypt every stored secret with the first key of CALBOOK_ENCRYPTION_KEY",
    ).set_defaults(func=cmd_rotate_key)
