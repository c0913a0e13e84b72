"""Sync progress: what a running sync of a connection is doing and how far it got.

``sync_phase`` (``listing``, ``fetching``, ``saving``; NULL when no sync runs),
``sync_calendars_done`` / ``sync_calendars_total``, ``sync_items`` (busy items imported so
far) and ``sync_started_at`` / ``sync_progress_at``. Only meaningful while the connection's
sync lease (``sync_lock_until``) holds: a worker that died mid-sync leaves them behind, and
readers ignore them once the lease ran out (docs/sync.md#sync-progress).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from booking_engine.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (
    ("sync_phase", sa.String(20)),
    ("sync_calendars_done", sa.Integer()),
    ("sync_calendars_total", sa.Integer()),
    ("sync_items", sa.Integer()),
    ("sync_started_at", UTCDateTime()),
    ("sync_progress_at", UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("calendar_connections") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendar_connections") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
