"""Rows of ``calendar_feeds``: one token hash per user; every function works in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from booking_engine.store.tables import calendar_feeds


def replace_token(conn: Connection, user_id: str, token_hash: str, now: datetime) -> None:
    """The user's feed token from now on; the previous one, if any, is gone in the same transaction."""
    conn.execute(delete(calendar_feeds).where(calendar_feeds.c.user_id == user_id))
    conn.execute(insert(calendar_feeds).values(user_id=user_id, token_hash=token_hash, created_at=now))


def delete_token(conn: Connection, user_id: str) -> bool:
    return conn.execute(delete(calendar_feeds).where(calendar_feeds.c.user_id == user_id)).rowcount > 0


def user_for(conn: Connection, token_hash: str) -> str | None:
    row = conn.execute(select(calendar_feeds.c.user_id).where(calendar_feeds.c.token_hash == token_hash)).first()
    return row[0] if row else None
