"""Every table of the store, in one ``metadata``: what the migrations must produce.

Tables live in modules by concern (``tables`` for the booking core, ``worker_tables`` for
delivery bookkeeping, ``rate_limit_tables`` for the provider rate limiter); importing this module
registers them all.
"""

from __future__ import annotations

from booking_engine.store import rate_limit_tables, worker_tables  # noqa: F401  (register their tables)
from booking_engine.store.tables import metadata

__all__ = ["metadata"]
