"""``If-Match`` on expert settings: the optimistic lock of docs/domain.md#settings over HTTP.

The ETag of the settings is their ``version``, quoted (``"3"``; ``"0"`` before the first
save). ``PUT`` must name the version it read:
- no ``If-Match`` at all is 428 Precondition Required (RFC 6585), code
  ``precondition_failed``: a client that forgot the header would otherwise silently
  overwrite someone else's change;
- anything that is not exactly one strong version tag (a list, ``*``, a weak ``W/``
  tag) is 412 ``precondition_failed``: ``*`` would defeat the lock, and weak tags never
  match under the strong comparison ``If-Match`` requires;
- a stale version is 412 ``precondition_failed``, raised by the store.
"""

from __future__ import annotations

import re

from booking_engine.errors import PreconditionFailed

_TAG = re.compile(r'^(?:"(\d{1,9})"|(\d{1,9}))$')


class PreconditionRequired(PreconditionFailed):
    status = 428
    title = "If-Match is required"


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int:
    if if_match is None or not if_match.strip():
        raise PreconditionRequired("send If-Match with the ETag (version) of the settings you read")
    match = _TAG.match(if_match.strip())
    if match is None:
        raise PreconditionFailed('If-Match must be exactly one ETag, e.g. "3"')
    return int(match.group(1) or match.group(2))
