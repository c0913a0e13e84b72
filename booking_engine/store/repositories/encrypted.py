"""Every column that holds a Fernet token, and the row-by-row access that key rotation needs.

Calendar credentials (``calendar_connections.credentials``, cleared once a connection is
disconnected), webhook signing secrets (``webhook_subscriptions.secret``) and the PKCE
verifiers of pending Google authorizations (``oauth_states.secret``): nothing else is
encrypted at rest (docs/security.md#secrets-at-rest).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table, select, update

from booking_engine.store.tables import calendar_connections, oauth_states, webhook_subscriptions

#: (table, its key column, its encrypted column)
ENCRYPTED: tuple[tuple[Table, Column[Any], Column[Any]], ...] = (
    (calendar_connections, calendar_connections.c.id, calendar_connections.c.credentials),
    (webhook_subscriptions, webhook_subscriptions.c.id, webhook_subscriptions.c.secret),
    (oauth_states, oauth_states.c.state, oauth_states.c.secret),
)

BATCH = 200


def tokens_after(conn: Connection, key: Column[Any], column: Column[Any], after: str | None) -> list[tuple[str, str]]:
    """The next batch of ``(key, token)`` pairs past ``after``, in key order (non-empty tokens only)."""
    stmt = select(key, column).where(column.is_not(None), column != "").order_by(key).limit(BATCH)
    if after is not None:
        stmt = stmt.where(key > after)
    return [(str(r[0]), str(r[1])) for r in conn.execute(stmt).tuples()]


def replace_token(conn: Connection, table: Table, key: Column[Any], column: Column[Any], row: str,
                  old: str, new: str) -> bool:
    """Swap one token, unless the row changed meanwhile (then the newer value stands)."""
    done = conn.execute(update(table).where(key == row, column == old).values({column.name: new}))
    return bool(done.rowcount)

