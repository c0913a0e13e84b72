"""Opaque keyset cursors for list endpoints: stable under inserts, unlike offsets."""

from __future__ import annotations

import base64
import json
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
