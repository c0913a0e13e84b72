"""The shared rate limiter's tables (revision 0015), for deployments without Redis.

They hold no booking data, only the state of the limits calbook keeps towards calendar providers
(``connectors.rate_limits``, docs/rate-limits.md): one GCRA bucket per key (a hashed mailbox,
user, project or host) and the leases of requests in flight where a provider limits concurrency.
Times are integer microseconds since the epoch, the arithmetic's own unit, identical on both
databases. Rows whose time has passed are worth nothing (a full bucket, an expired lease) and are
pruned as the limiter goes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table, text

from booking_engine.store.tables import metadata

rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("key", String(200), nullable=False),
    Column("tat", BigInteger, nullable=False, server_default=text("0")),  # theoretical arrival time
    Column("paused_until", BigInteger, nullable=False, server_default=text("0")),  # a provider's Retry-After
    Column("expires_at", BigInteger, nullable=False, server_default=text("0")),  # after it: a full bucket
    PrimaryKeyConstraint("key", name="pk_rate_limit_buckets"),
    Index("ix_rate_limit_buckets_expires_at", "expires_at"),
)

rate_limit_leases = Table(
    "rate_limit_leases",
    metadata,
    Column("key", String(200), nullable=False),
    Column("holder", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("key", "holder", name="pk_rate_limit_leases"),
    Index("ix_rate_limit_leases_expires_at", "expires_at"),
)
