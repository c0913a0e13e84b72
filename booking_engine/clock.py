"""The one place the domain reads the time, so tests can move it (time-machine) or pass ``now``."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
