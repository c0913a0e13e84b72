"""The caller's own profile (``PUT /v1/me``).

The e-mail address and display name end up in e-mail headers (``To: Name <address>``), so
they are held to what a header can carry (docs/api.md#profile): an address is
``local@domain`` in printable ASCII with a dotted-label domain (international domains in their
``xn--`` form), and neither field may hold a control character (CR, LF, NUL, tab, ...) or a
Unicode line or paragraph separator. Refusing them here keeps one bad profile from ever
reaching the mail builder.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from booking_engine.errors import NotFound, ValidationError
from booking_engine.services._common import now_or, optional_text
from booking_engine.services.pagination import check_limit, decode_cursor, encode_cursor
from booking_engine.store.db import Store
from booking_engine.store.repositories import users as user_rows
from booking_engine.timeutil import zone

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_email_address(value: str) -> bool:
    """``local@domain``: an unquoted ASCII local part without leading, trailing or doubled dots,
    and a domain of letter-digit-hyphen labels (``localhost`` and other single labels included)."""
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or not _LOCAL.fullmatch(local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    return bool(domain) and len(domain) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value)


MAX_HEADLINE = 200
MAX_BIO = 4000


def _profile(row: Any, user_id: str) -> dict[str, Any]:
    if row is None:
        return {"id": user_id, "email": None, "displayName": None, "timezone": None, "headline": None, "bio": None}
    return {"id": row["id"], "email": row["email"], "displayName": row["display_name"], "timezone": row["timezone"],
            "headline": row["headline"], "bio": row["bio"]}


def update_profile(
    store: Store, user_id: str, email: Any = None, display_name: Any = None, timezone: Any = None,
    now: datetime | None = None, *, headline: Any = None, bio: Any = None,
) -> dict[str, Any]:
    email = optional_text(email, "email", 320)
    if email is not None and not is_email_address(email):
        raise ValidationError("email is not a valid address", field="email")
    display_name = optional_text(display_name, "displayName", 200)
    if display_name is not None and has_control_characters(display_name):
        raise ValidationError("displayName must not contain control characters or line breaks", field="displayName")
    headline = optional_text(headline, "headline", MAX_HEADLINE)
    if headline is not None and has_control_characters(headline):
        raise ValidationError("headline must not contain control characters or line breaks", field="headline")
    bio = optional_text(bio, "bio", MAX_BIO)
    if timezone is not None:
        if not isinstance(timezone, str):
            raise ValidationError("timezone must be an IANA name", field="timezone")
        zone(timezone)
    moment = now_or(now)
    with store.write() as conn:
        user_rows.ensure_user(conn, user_id, moment)
        values = {"email": email, "display_name": display_name, "timezone": timezone, "headline": headline,
                  "bio": bio}
        user_rows.update_user(conn, user_id, {k: v for k, v in values.items() if v is not None}, moment)
        row = user_rows.get_user(conn, user_id)
    assert row is not None
    return _profile(row, user_id)


def get_profile(store: Store, user_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = user_rows.get_user(conn, user_id)
    return _profile(row, user_id)


def _public(row: Any) -> dict[str, Any]:
    """What anyone signed in may see of an expert (docs/api.md#experts): never the e-mail address."""
    return {
        "id": row["id"],
        "displayName": row["display_name"],
        "headline": row["headline"],
        "bio": row["bio"],
        "timezone": row["settings_timezone"],
        "hourlyRateCents": row["hourly_rate_cents"],
        "currency": row["currency"],
        "minBookingDurationMinutes": row["min_duration_minutes"],
        "maxBookingDurationMinutes": row["max_duration_minutes"],
    }


def list_experts(store: Store, cursor: str | None = None, limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
    """Experts who have published settings, oldest profile first, with the keyset cursor of every list."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    with store.read() as conn:
        rows = user_rows.published_experts(conn, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [_public(r) for r in rows], encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None


def get_expert(store: Store, expert_id: str) -> dict[str, Any]:
    """One expert's public profile; ``not_found`` for anyone who has not published settings."""
    with store.read() as conn:
        row = user_rows.published_expert(conn, expert_id)
    if row is None:
        raise NotFound("expert not found")
    return _public(row)
