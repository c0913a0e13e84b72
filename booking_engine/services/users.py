"""The caller's own profile (``PUT /v1/me``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from booking_engine.errors import ValidationError
from booking_engine.services._common import now_or, optional_text
from booking_engine.store import repositories as repo
from booking_engine.store.db import Store
from booking_engine.timeutil import zone


def update_profile(
    store: Store, user_id: str, email: Any = None, display_name: Any = None, timezone: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    email = optional_text(email, "email", 320)
    if email is not None and ("@" not in email or email.strip() != email):
        raise ValidationError("email is not a valid address", field="email")
    display_name = optional_text(display_name, "displayName", 200)
    if timezone is not None:
        if not isinstance(timezone, str):
            raise ValidationError("timezone must be an IANA name", field="timezone")
        zone(timezone)
    moment = now_or(now)
    with store.write() as conn:
        repo.ensure_user(conn, user_id, moment)
        values = {"email": email, "display_name": display_name, "timezone": timezone}
        repo.update_user(conn, user_id, {k: v for k, v in values.items() if v is not None}, moment)
        row = repo.get_user(conn, user_id)
    assert row is not None
    return {"id": row["id"], "email": row["email"], "displayName": row["display_name"], "timezone": row["timezone"]}


def get_profile(store: Store, user_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = repo.get_user(conn, user_id)
    if row is None:
        return {"id": user_id, "email": None, "displayName": None, "timezone": None}
    return {"id": row["id"], "email": row["email"], "displayName": row["display_name"], "timezone": row["timezone"]}
