"""Service keys: the host app's back ends call calbook with a key of their own, never as a user.

``service_keys`` holds the SHA-256 of each key (the key itself is shown once, by ``calbook
apikey create``), its scopes and, once revoked, when. A name is unique among the keys not
revoked, so a key can be replaced under the same name (docs/security.md#service-keys).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from booking_engine.store.types import JSONType, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_service_keys"),
        sa.UniqueConstraint("key_hash", name="uq_service_keys_key_hash"),
    )
    op.create_index(
        "ix_service_keys_active_name", "service_keys", ["name"], unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"), sqlite_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_service_keys_active_name", table_name="service_keys")
    op.drop_table("service_keys")
