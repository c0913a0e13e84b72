"""Sync schedule: an explicit due time per calendar connection (docs/sync.md#scheduling, decision 0023).

``calendar_connections`` gains ``next_sync_at`` (indexed: the dispatcher claims by it),
``sync_failures`` (failed syncs in a row, the backoff) and ``sync_resume_from`` (the calendar a
sync stopped by its time budget continues at). ``outbox_handler_runs`` gains an index on
``(handler, status, next_attempt_at)``: the calendar-push drain claims its due runs by it.

Existing connections are spread, not all made due at once: a connection last synced within
its interval keeps its place (plus jitter); an overdue one is due at a random moment of the
next five minutes; one never synced, or asked for, is due now. Connections waiting for the
expert (``reauth_required``) or disconnected get none.

Plain ``op.add_column``/``op.create_index``, never ``batch_alter_table`` (it recreates the table
on SQLite and drops the triggers it does not know of, see 0013).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from booking_engine.store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The intervals of the time of writing (frozen here: a migration does not follow later settings).
_POLLED = ("caldav", "ics")
_POLL_SECONDS = 300
_BACKSTOP_SECONDS = 6 * 3600
_SPREAD_SECONDS = 300

_connections = sa.table(
    "calendar_connections",
    sa.column("id", sa.String),
    sa.column("provider", sa.String),
    sa.column("status", sa.String),
    sa.column("last_synced_at", UTCDateTime()),
    sa.column("sync_requested_at", UTCDateTime()),
    sa.column("next_sync_at", UTCDateTime()),
)


def _first_due(row: sa.Row, now: datetime) -> datetime:
    if row.last_synced_at is None or row.sync_requested_at is not None:
        return now
    interval = _POLL_SECONDS if row.provider in _POLLED else _BACKSTOP_SECONDS
    due = row.last_synced_at + timedelta(seconds=interval * random.uniform(0.8, 1.0))
    return due if due > now else now + timedelta(seconds=random.uniform(0, _SPREAD_SECONDS))


def upgrade() -> None:
    op.add_column("calendar_connections", sa.Column("next_sync_at", UTCDateTime(), nullable=True))
    op.add_column("calendar_connections",
                  sa.Column("sync_failures", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("calendar_connections", sa.Column("sync_resume_from", sa.Integer(), nullable=True))
    op.create_index("ix_calendar_connections_due", "calendar_connections", ["next_sync_at"])
    op.create_index("ix_outbox_handler_runs_due", "outbox_handler_runs", ["handler", "status", "next_attempt_at"])

    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(_connections.c.id, _connections.c.provider, _connections.c.last_synced_at,
                  _connections.c.sync_requested_at)
        .where(_connections.c.status.in_(("active", "error")))
    ).all()
    if rows:
        bind.execute(
            sa.update(_connections).where(_connections.c.id == sa.bindparam("row_id"))
            .values(next_sync_at=sa.bindparam("due", type_=UTCDateTime())),
            [{"row_id": r.id, "due": _first_due(r, now)} for r in rows],
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_handler_runs_due", table_name="outbox_handler_runs")
    op.drop_index("ix_calendar_connections_due", table_name="calendar_connections")
    # DROP COLUMN exists on SQLite since 3.35 and on every supported PostgreSQL.
    op.drop_column("calendar_connections", "sync_resume_from")
    op.drop_column("calendar_connections", "sync_failures")
    op.drop_column("calendar_connections", "next_sync_at")
