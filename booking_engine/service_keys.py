"""Service keys of the host app's back ends (docs/security.md#service-keys), plain Python.

A key is not a user: it names a back end (``payments``) and carries scopes, each of which
opens a few routes. It can never book, read availability settings or act for a person.
The key itself is random (256 bits), shown once, and kept only as its SHA-256: a slow hash
would protect nothing more against a key with that much entropy, and a fast one keeps the
lookup per request one indexed read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from booking_engine.errors import ValidationError

KEY_PREFIX = "cbk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY = re.compile(r"^cbk_[A-Za-z0-9_-]{43}$")
SHOWN_PREFIX_LENGTH = 12


class Scope(StrEnum):
    """What a key may do: ``payments`` records payments, ``bookings:read`` reads one booking by id."""

    PAYMENTS = "payments"
    BOOKINGS_READ = "bookings:read"


@dataclass(frozen=True, slots=True)
class ServiceKey:
    id: str
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


def parse_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("a key's name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
                              "or digit", field="name")
    return name


def parse_scopes(raw: object) -> frozenset[Scope]:
    if not isinstance(raw, list | tuple | set | frozenset) or not raw:
        raise ValidationError("a key needs at least one scope", field="scope")
    scopes = set()
    for item in raw:
        try:
            scopes.add(Scope(item))
        except ValueError as exc:
            known = ", ".join(s.value for s in Scope)
            raise ValidationError(f"unknown scope {item!r} (known: {known})", field="scope") from exc
    return frozenset(scopes)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(token: str) -> bool:
    """Is this bearer token meant as a service key? (JWTs never start with ``cbk_``.)"""
    return token.startswith(KEY_PREFIX)


def well_formed(token: str) -> bool:
    return bool(_KEY.match(token))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
