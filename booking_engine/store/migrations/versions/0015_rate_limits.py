"""The shared rate limiter's tables, for deployments without Redis (docs/rate-limits.md).

``rate_limit_buckets``: one GCRA bucket per hashed key (mailbox, user, project, host), times in
integer microseconds. ``rate_limit_leases``: requests in flight where a provider limits
concurrency (Microsoft Graph: 4 per mailbox).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("tat", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("paused_until", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limit_buckets"),
    )
    op.create_index("ix_rate_limit_buckets_expires_at", "rate_limit_buckets", ["expires_at"])
    op.create_table(
        "rate_limit_leases",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "holder", name="pk_rate_limit_leases"),
    )
    op.create_index("ix_rate_limit_leases_expires_at", "rate_limit_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_leases_expires_at", table_name="rate_limit_leases")
    op.drop_table("rate_limit_leases")
    op.drop_index("ix_rate_limit_buckets_expires_at", table_name="rate_limit_buckets")
    op.drop_table("rate_limit_buckets")
