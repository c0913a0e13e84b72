"""``calbook apikey create|list|revoke``: the service keys of the host app's back ends (docs/security.md#service-keys).

``create`` prints the key alone on stdout, once (only its hash is stored), so a deploy script
can capture it: ``KEY=$(calbook apikey create --name payments --scope payments)``.
"""

from __future__ import annotations

import argparse
import json
import sys

from booking_engine.errors import BookingError
from booking_engine.service_keys import Scope
from booking_engine.store.db import Store
from config.settings import Settings


def _store(settings: Settings) -> Store:
    return Store.from_url(settings.resolved_database_url())


def _refused(error: BookingError) -> int:
    print(f"calbook: {error.detail}", file=sys.stderr)
    return 2 if error.status == 422 else 1


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from booking_engine.services.service_keys import create_key

    store = _store(settings)
    try:
        key, secret = create_key(store, args.name, args.scope)
    except BookingError as error:
        return _refused(error)
    finally:
        store.dispose()
    print(secret)
    print(f"service key {key.name!r} created ({key.id}, scopes: {', '.join(sorted(key.scopes))}); "
          "store it now, it is not shown again", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from booking_engine.services.service_keys import list_keys

    store = _store(settings)
    try:
        keys = list_keys(store)
    finally:
        store.dispose()
    if args.json:
        print(json.dumps([{
            "id": k.id, "name": k.name, "prefix": k.prefix, "scopes": sorted(k.scopes),
            "createdAt": k.created_at.isoformat(), "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None,
        } for k in keys], indent=2))
        return 0
    if not keys:
        print("no service keys")
        return 0
    print(f"{'name':<20}  {'id':<36}  {'key starts':<12}  {'status':<7}  {'created':<20}  scopes")
    for k in keys:
        status = "active" if k.active else "revoked"
        print(f"{k.name:<20}  {k.id:<36}  {k.prefix:<12}  {status:<7}  "
              f"{k.created_at.strftime('%Y-%m-%d %H:%M:%SZ'):<20}  {','.join(sorted(k.scopes))}")
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from booking_engine.services.service_keys import revoke_key

    store = _store(settings)
    try:
        key = revoke_key(store, args.key)
    except BookingError as error:
        return _refused(error)
    finally:
        store.dispose()
    print(f"service key {key.name!r} ({key.id}) revoked: it is refused from now on")
    return 0


def add_apikey_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apikey = sub.add_parser("apikey", help="service keys for the host app's back ends (payments, ...)")
    actions = apikey.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="a new key, printed once")
    create.add_argument("--name", required=True, help="what the key is for, e.g. payments (unique among active keys)")
    create.add_argument("--scope", action="append", required=True, choices=[s.value for s in Scope],
                        help="what it may do; repeat for several")
    create.set_defaults(func=cmd_create)

    listing = actions.add_parser("list", help="every key, active and revoked (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    listing.set_defaults(func=cmd_list)

    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key", metavar="NAME_OR_ID")
    revoke.set_defaults(func=cmd_revoke)
