"""Expert profile: a short ``headline`` and a longer ``bio`` on ``users`` (the experts directory).

Plain ``ALTER TABLE ... ADD COLUMN`` (``op.add_column``), never ``batch_alter_table``: on SQLite a
batch operation recreates the table and drops the triggers and indexes it does not know of.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("headline", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("bio", sa.String(4000), nullable=True))


def downgrade() -> None:
    # DROP COLUMN exists on SQLite since 3.35 and on every supported PostgreSQL.
    op.drop_column("users", "bio")
    op.drop_column("users", "headline")
