"""An index of the connections whose sync is leased (queued or running).

The sync dispatcher counts them before every claim (``syncs_in_flight``) to keep under its cap;
without an index that count reads every connection row, ten thousand and more. Partial: only
leased rows are in it, a few hundred at most, so it costs nothing to keep.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_LEASED = sa.text("sync_lock_until IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_calendar_connections_leased", "calendar_connections", ["sync_lock_until"],
                    postgresql_where=_LEASED, sqlite_where=_LEASED)


def downgrade() -> None:
    op.drop_index("ix_calendar_connections_leased", table_name="calendar_connections")
