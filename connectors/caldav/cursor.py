"""The opaque state a CalDAV pull hands back to the worker, and reads on the next pull.

Kept as plain JSON (``to_dict``/``from_dict``) because the worker stores it in the same
transaction as the busy blocks. ``etags`` maps every known object href to its ETag: it drives
the ctag/etag fallback and the daily ``reconcile``. ``window_dependent`` lists the objects
whose busy blocks depend on the horizon (recurring ones, or ones starting beyond it): they are
expanded again when the horizon has slid by a day, even if the server says nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

CURSOR_VERSION = 1

SyncMode = Literal["sync", "etag"]


@dataclass(slots=True)
class CalDAVCursor:
    mode: SyncMode
    sync_token: str | None = None
    ctag: str | None = None
    etags: dict[str, str] = field(default_factory=dict)
    window_dependent: set[str] = field(default_factory=set)
    expanded_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": CURSOR_VERSION,
            "mode": self.mode,
            "sync_token": self.sync_token,
            "ctag": self.ctag,
            "etags": dict(sorted(self.etags.items())),
            "window_dependent": sorted(self.window_dependent),
            "expanded_until": self.expanded_until.isoformat() if self.expanded_until else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CalDAVCursor | None:
        """``None`` (meaning: do a full sync) for a missing, foreign or outdated cursor."""
        if not data or data.get("v") != CURSOR_VERSION or data.get("mode") not in ("sync", "etag"):
            return None
        try:
            until = data.get("expanded_until")
            return cls(
                mode=data["mode"],
                sync_token=data.get("sync_token") or None,
                ctag=data.get("ctag") or None,
                etags={str(k): str(v) for k, v in (data.get("etags") or {}).items()},
                window_dependent={str(h) for h in data.get("window_dependent") or []},
                expanded_until=datetime.fromisoformat(until) if until else None,
            )
        except (TypeError, ValueError, AttributeError):
            return None
