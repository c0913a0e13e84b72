"""Rows of ``service_keys`` <-> ``ServiceKey``; every function works in the caller's transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, RowMapping, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from booking_engine.errors import InvalidState
from booking_engine.service_keys import Scope, ServiceKey
from booking_engine.store.tables import service_keys


def _key(row: RowMapping) -> ServiceKey:
    return ServiceKey(
        id=row["id"], name=row["name"], prefix=row["prefix"], scopes=frozenset(Scope(s) for s in row["scopes"]),
        created_at=row["created_at"], revoked_at=row["revoked_at"],
    )


def insert_key(conn: Connection, key: ServiceKey, key_hash: str) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(service_keys).values(
                id=key.id, name=key.name, prefix=key.prefix, key_hash=key_hash,
                scopes=sorted(str(s) for s in key.scopes), created_at=key.created_at,
            ))
    except IntegrityError as exc:
        raise InvalidState(f"a key named {key.name!r} exists; revoke it first") from exc


def by_hash(conn: Connection, key_hash: str) -> ServiceKey | None:
    row = conn.execute(select(service_keys).where(service_keys.c.key_hash == key_hash)).mappings().first()
    return _key(row) if row else None


def list_keys(conn: Connection) -> list[ServiceKey]:
    rows = conn.execute(select(service_keys).order_by(service_keys.c.created_at, service_keys.c.id)).mappings()
    return [_key(r) for r in rows]


def revoke(conn: Connection, name_or_id: str, now: datetime) -> ServiceKey | None:
    """Revoke the active key with this name, or the key with this id; the key, or None if none matched."""
    row = conn.execute(
        select(service_keys).where(
            service_keys.c.revoked_at.is_(None),
            or_(service_keys.c.name == name_or_id, service_keys.c.id == name_or_id),
        )
    ).mappings().first()
    if row is None:
        return None
    conn.execute(update(service_keys).where(service_keys.c.id == row["id"]).values(revoked_at=now))
    return replace(_key(row), revoked_at=now)
