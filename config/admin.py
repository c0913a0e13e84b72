"""``calbook admin ...``: the chores that would otherwise need SQL (docs/operations.md#admin-commands).

Each subcommand is a thin caller of the function the worker runs for the same job, so doing a
chore by hand and the worker doing it cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta

from booking_engine.store.db import Store
from config.settings import Settings


def _store(settings: Settings) -> Store:
    return Store.from_url(settings.resolved_database_url())


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    """The nightly retention prune, now (``CALBOOK_WORKER_RETENTION_DAYS`` unless ``--days``)."""
    from worker import retention

    store = _store(settings)
    try:
        keep = timedelta(days=args.days if args.days is not None else settings.worker.retention_days)
        pruned = retention.prune(store, keep=keep)
    finally:
        store.dispose()
    print(f"pruned {pruned.outbox} dispatched outbox events, {pruned.deliveries} finished webhook deliveries, "
          f"{pruned.notifications} e-mail keys")
    return 0


def cmd_resend(args: argparse.Namespace, settings: Settings) -> int:
    """Send an event again: the handlers given up on, the failed webhook deliveries (``--delivered``:
    the delivered ones too). E-mails already sent are never sent twice."""
    from config.task_sender import CeleryTaskQueue
    from worker import outbox
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
    tasks = CeleryTaskQueue(settings.resolved_broker_url())
    if handlers:
        tasks.drain_outbox()
    if deliveries:
        tasks.deliver_webhooks()
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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "never"


def cmd_connections(args: argparse.Namespace, settings: Settings) -> int:
    """Every calendar connection with its state (``--json`` for one JSON document)."""
    from booking_engine.services.operations import list_connections
    from config.logging import redact

    store = _store(settings)
    try:
        found = list_connections(store, status=args.status, expert_id=args.expert)
    finally:
        store.dispose()
    if args.json:
        print(json.dumps([{
            "id": c.id, "expertId": c.expert_id, "provider": c.provider, "status": c.status, "account": c.account,
            "lastSyncedAt": c.last_synced_at.isoformat() if c.last_synced_at else None,
            "lastError": redact(c.last_error) if c.last_error else None,
            "syncRequested": c.sync_requested_at is not None, "createdAt": c.created_at.isoformat(),
        } for c in found], indent=2))
        return 0
    if not found:
        print("no calendar connections")
        return 0
    print(f"{'id':<36}  {'expert':<20}  {'provider':<8}  {'status':<15}  {'last synced':<20}  last error")
    for c in found:
        error = redact(c.last_error)[:80] if c.last_error else ""
        print(f"{c.id:<36}  {c.expert_id:<20}  {c.provider:<8}  {c.status:<15}  {_when(c.last_synced_at):<20}  {error}")
    return 0


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Sync one connection now: the request is noted (the periodic sync honours it if the broker is
    down) and the dispatcher kicked for it, exactly as the API's ``POST .../sync`` does, for any
    expert: the dispatcher's claim keeps it from being queued twice."""
    from booking_engine.errors import NotFound
    from booking_engine.services import connections
    from config.task_sender import CeleryTaskQueue

    store = _store(settings)
    try:
        connections.request_sync(store, None, args.connection_id)
    except NotFound:
        print(f"calbook: no calendar connection {args.connection_id} (or it is disconnected)", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    queued = CeleryTaskQueue(settings.resolved_broker_url()).sync(args.connection_id)  # the dispatcher claims it
    print(f"sync of {args.connection_id} " + ("queued" if queued else
          "requested; the broker is unreachable, so the periodic sync will run it within 5 minutes"))
    return 0


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser("admin", help="chores: list connections, sync one, re-send an event, rotate the key, "
                           "prune old data now (docs/operations.md#admin-commands)")
    chores = admin.add_subparsers(dest="chore", required=True)

    listing = chores.add_parser("connections", help="every calendar connection and its state")
    listing.add_argument("--status", choices=("active", "error", "reauth_required", "disconnected"))
    listing.add_argument("--expert", help="only this expert's")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    listing.set_defaults(func=cmd_connections)

    sync = chores.add_parser("sync", help="sync one calendar connection now")
    sync.add_argument("connection_id")
    sync.set_defaults(func=cmd_sync)

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
