"""Use cases of service keys: create (the key shown once), list, revoke, and authenticate a request."""

from __future__ import annotations

import logging
from datetime import datetime

from booking_engine.errors import NotFound, Unauthenticated
from booking_engine.model import new_id
from booking_engine.service_keys import (
    SHOWN_PREFIX_LENGTH,
    ServiceKey,
    hash_key,
    new_key,
    parse_name,
    parse_scopes,
    well_formed,
)
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import service_keys as key_rows

log = logging.getLogger(__name__)


def create_key(store: Store, name: str, scopes: list[str], now: datetime | None = None) -> tuple[ServiceKey, str]:
    """A new key and its secret (the only time it exists outside the caller: only its hash is kept)."""
    key_name = parse_name(name)
    allowed = parse_scopes(scopes)
    secret = new_key()
    key = ServiceKey(new_id(), key_name, secret[:SHOWN_PREFIX_LENGTH], allowed, now_or(now))
    with store.write() as conn:
        key_rows.insert_key(conn, key, hash_key(secret))
    log.info("service key created", extra={"service_key": key.name, "key_id": key.id,
                                           "scopes": sorted(str(s) for s in allowed)})
    return key, secret


def list_keys(store: Store) -> list[ServiceKey]:
    with store.read() as conn:
        return key_rows.list_keys(conn)


def revoke_key(store: Store, name_or_id: str, now: datetime | None = None) -> ServiceKey:
    with store.write() as conn:
        key = key_rows.revoke(conn, name_or_id, now_or(now))
    if key is None:
        raise NotFound(f"no active service key named {name_or_id!r}")
    log.info("service key revoked", extra={"service_key": key.name, "key_id": key.id})
    return key


def authenticate(store: Store, secret: str) -> ServiceKey:
    """The active key whose secret this is, or ``unauthenticated`` (unknown, malformed or revoked alike)."""
    if not well_formed(secret):
        raise Unauthenticated("the service key is malformed")
    with store.read() as conn:
        key = key_rows.by_hash(conn, hash_key(secret))
    if key is None or not key.active:
        raise Unauthenticated("the service key is unknown or revoked")
    return key
