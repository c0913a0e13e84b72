"""Conditional GETs of the read views: ``ETag`` and ``If-None-Match`` (RFC 9110 §8.8.3, §13.1.2).

The tag names what an answer depends on: the expert's version (bumped by database triggers
in the same transaction as every booking, settings, exception, busy-block, request and
profile write: docs/decisions/0019-expert-version-by-trigger.md), the route and its
parameters, and, for views that depend on "now", the minute the answer was computed for.

Time: slots and the month view are computed for ``now`` rounded UP to the next whole
minute (``answer_time``), so the answer is a pure function of what the tag names and two
requests with the same tag get the same bytes (a strong tag). Rounding up is the cautious
side: a slot disappears up to a minute early, never lingers after its notice has passed.

The version is read BEFORE the answer: a write landing in between gives an answer newer
than its tag, which the next revalidation simply replaces; never a tag newer than its answer.
``If-None-Match`` uses the weak comparison (``W/"x"`` matches ``"x"``), takes a list, and
``*`` matches whenever the expert exists. Authentication and the expert's existence are
checked before any 304: the route's dependencies run first, and an expert without a version
row gets no 304 (the full path then answers 404 or 200).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from fastapi import Response

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.repositories.expert_versions import get_version

_MINUTE = timedelta(minutes=1)
ETAG_HEADER = {"ETag": {"description": "Names this answer; send it back in If-None-Match",
                        "schema": {"type": "string"}}}


def answer_time(now: datetime | None = None) -> datetime:
    """``now`` rounded up to the next whole minute (unchanged when it is one already)."""
    moment = now or utcnow()
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + _MINUTE


def read_version(store: Store, expert_id: str) -> int | None:
    with store.read() as conn:
        return get_version(conn, expert_id)


def make_etag(version: int, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]
    return f'"v{version}-{digest}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def none_match(if_none_match: str | None, current: str) -> bool:
    """True when ``If-None-Match`` names the current representation: answer 304."""
    if if_none_match is None:
        return False
    value = if_none_match.strip()
    if value == "*":
        return True
    wanted = _opaque(current)
    return any(_opaque(item) == wanted for item in value.split(",") if item.strip())


def not_modified(tag: str) -> Response:
    """A 304: the ETag, no body (RFC 9110 §15.4.5)."""
    return Response(status_code=304, headers={"ETag": tag})
