"""Expert versions: one number per expert, bumped by triggers on every write the read views depend on.

``expert_versions`` holds it; the triggers (booking_engine/store/expert_version_ddl.py) bump
it in the same transaction as each insert, update or delete of bookings, settings,
exceptions, busy blocks, booking requests and users. The ETags of slots, the month view and
busy times are made of it (docs/api.md#conditional-requests, decision 0019).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from booking_engine.store.expert_version_ddl import create_statements, drop_statements

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expert_versions",
        sa.Column("expert_id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("expert_id", name="pk_expert_versions"),
    )
    # Experts written before this migration start at 1 (a tag from before it cannot exist).
    op.execute("INSERT INTO expert_versions (expert_id, version) SELECT id, 1 FROM users")
    for statement in create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("expert_versions")
