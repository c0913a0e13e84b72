"""Reading an expert's version (bumped only by the triggers of migration 0012)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from booking_engine.store.tables import expert_versions


def get_version(conn: Connection, expert_id: str) -> int | None:
    """The expert's version, or None when nothing of theirs was ever written."""
    value = conn.execute(
        select(expert_versions.c.version).where(expert_versions.c.expert_id == expert_id)
    ).scalar_one_or_none()
    return None if value is None else int(value)
