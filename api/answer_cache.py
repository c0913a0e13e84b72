"""Ready answers of the read views, kept per process under their ``ETag``.

A tag names everything an answer depends on (api/conditional.py): the expert's version, the
route and its parameters, and the minute the answer was computed for. Two requests with the
same tag get the same bytes, so the bytes computed for the first can answer the second without
reading settings, exceptions and busy time again: a hit costs the version read that makes the
tag, nothing more. An entry can never be served stale: a write bumps the version, so the next
request makes a tag no entry has; entries of old versions and past minutes simply age out of
the LRU. Each process has its own cache (nothing to share, nothing to invalidate across
processes); ``CALBOOK_ANSWER_CACHE_ENTRIES=0`` turns it off. docs/performance.md has the numbers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class AnswerCache:
    """A bounded, thread-safe LRU of response bodies by tag (sync routes run on several threads)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, tag: str | None) -> bytes | None:
        if tag is None or self.max_entries <= 0:
            return None
        with self._lock:
            body = self._entries.get(tag)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(tag)
            self.hits += 1
            return body

    def put(self, tag: str | None, body: bytes) -> None:
        if tag is None or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[tag] = body
            self._entries.move_to_end(tag)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
