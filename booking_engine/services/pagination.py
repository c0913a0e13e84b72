"""Opaque keyset cursors for list endpoints: stable under inserts, unlike offsets.

A cursor comes back from the client, so once decoded it is checked like any other input
(docs/api.md#pagination): its instant must carry an offset and lie between the years 1970
and 2999 in UTC (the API's bounds; year 1 at +14:00 does not even exist in UTC), its id must
be 1 to 64 printable characters of valid Unicode (PostgreSQL refuses NUL and lone surrogates).
Anything else is a 422 ``validation_error`` on ``cursor``, never a database error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from booking_engine.errors import ValidationError

MAX_LIMIT = 200
MIN_YEAR, MAX_YEAR = 1970, 2999
MAX_ID_LENGTH = 64


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = json.dumps([at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(item_id, str):
            raise ValueError("cursor fields")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("naive cursor instant")
        parsed = parsed.astimezone(UTC)
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValueError("cursor instant out of range")
        _check_id(item_id)
        return parsed, item_id
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # binascii.Error is a ValueError
        raise ValidationError("cursor is not valid", field="cursor") from exc


def _check_id(item_id: str) -> None:
    if not 1 <= len(item_id) <= MAX_ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in item_id):
        raise ValueError("cursor id")
    item_id.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def party_filter(actor: str, as_role: str) -> dict[str, str | None]:
    """``user_id``/``expert_id`` filter of a "my bookings/requests" list, seen as user or as expert."""
    if as_role not in ("user", "expert"):
        raise ValidationError("as must be 'user' or 'expert'", field="as")
    return {"user_id": actor if as_role == "user" else None, "expert_id": actor if as_role == "expert" else None}


def check_statuses(statuses: Sequence[str] | None, allowed: Iterable[str]) -> None:
    known = set(allowed)
    for status in statuses or ():
        if status not in known:
            raise ValidationError(f"unknown status {status!r}", field="status")
