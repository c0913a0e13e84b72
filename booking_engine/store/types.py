"""Column types that behave the same on SQLite and PostgreSQL.

``UTCDateTime`` is ``timestamptz`` on PostgreSQL (the exclusion constraint needs real
ranges) and integer epoch microseconds on SQLite: exact, ordered, indexable, and an order
of magnitude cheaper to read back than SQLite's text timestamps when a query returns ten
thousand busy intervals. Either way Python sees aware UTC datetimes only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, Dialect
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class UTCDateTime(TypeDecorator[datetime]):
    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the store")
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        return (value - EPOCH) // _MICRO

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return EPOCH + timedelta(microseconds=int(value))


JSONType = JSON().with_variant(JSONB(), "postgresql")
