"""Opaque keyset cursors for list endpoints: stable under inserts, unlike offsets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from booking_engine.errors import ValidationError

MAX_LIMIT = 200


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = json.dumps([at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or not isinstance(item_id, str):
            raise ValueError
        return parsed, item_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationError("cursor is not valid", field="cursor") from exc


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
