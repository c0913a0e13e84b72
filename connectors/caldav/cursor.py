"""The opaque state a CalDAV pull hands back to the worker, and reads on the next pull.

Kept as plain JSON (``to_dict``/``from_dict``) because the worker stores it in the same
transaction as the busy blocks. ``etags`` maps every known object href to its ETag: it drives
the ctag/etag fallback and the daily ``reconcile``. ``window_dependent`` lists the objects
whose busy blocks depend on the horizon (recurring ones, or ones starting beyond it): they are
expanded again when the horizon has slid by a day, even if the server says nothing changed.
``refetch`` lists objects whose last fetch failed (a per-href error in a multiget): they are
asked for again on the next pull, and their stored blocks stay meanwhile. ``raw`` keeps the
server's own spelling of an href where it differs from the canonical encoding of its key, so
that requests send it back exactly as given. ``ctag`` is kept in ``sync`` mode too: an
unchanged ctag saves the REPORT, and a changed ctag with an unchanged, empty sync answer
gives away a server that does not honour its token. Keys are ``webdav_xml.href_path``'s
normal form.
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
    refetch: set[str] = field(default_factory=set)
    raw: dict[str, str] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        self.etags.pop(key, None)
        self.window_dependent.discard(key)
        self.refetch.discard(key)
        self.raw.pop(key, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": CURSOR_VERSION,
            "mode": self.mode,
            "sync_token": self.sync_token,
            "ctag": self.ctag,
            "etags": dict(sorted(self.etags.items())),
            "window_dependent": sorted(self.window_dependent),
            "expanded_until": self.expanded_until.isoformat() if self.expanded_until else None,
            "refetch": sorted(self.refetch),
            "raw": dict(sorted(self.raw.items())),
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
                refetch={str(h) for h in data.get("refetch") or []},
                raw={str(k): str(v) for k, v in (data.get("raw") or {}).items()},
            )
        except (TypeError, ValueError, AttributeError):
            return None
