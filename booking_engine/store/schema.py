"""Every table of the store, in one ``metadata``: what the migrations must produce.

Tables live in modules by concern (``tables`` for the booking core, ``worker_tables`` for
delivery bookkeeping); importing this module registers them all.
"""

from __future__ import annotations

from booking_engine.store import worker_tables  # noqa: F401  (registers its tables)
from booking_engine.store.tables import metadata

__all__ = ["metadata"]
