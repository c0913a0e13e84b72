"""Booking policies: the change cut-off, the reschedule limit, daily and weekly limits.

``availability_settings`` gains ``change_cutoff_minutes`` (0: none) and the nullable limits
``max_reschedules``, ``max_bookings_per_day`` and ``max_bookings_per_week`` (NULL: none);
``bookings`` gains ``reschedule_count`` (0), docs/lifecycle.md#change-cut-off and
docs/domain.md#booking-limits.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:00:01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LIMITS = ("max_reschedules", "max_bookings_per_day", "max_bookings_per_week")


def upgrade() -> None:
    with op.batch_alter_table("availability_settings") as batch:
        batch.add_column(sa.Column("change_cutoff_minutes", sa.Integer(), nullable=False, server_default=sa.text("0")))
        for name in LIMITS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("reschedule_count", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("reschedule_count")
    with op.batch_alter_table("availability_settings") as batch:
        for name in reversed(LIMITS):
            batch.drop_column(name)
        batch.drop_column("change_cutoff_minutes")
