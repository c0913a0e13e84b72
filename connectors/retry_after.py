"""``parse_retry_after``: the one reader of an HTTP ``Retry-After`` header for every connector.

RFC 9110 section 10.2.3 allows two forms: ``delta-seconds`` (``1*DIGIT``, "120") and an
``HTTP-date`` (``Sun, 06 Nov 1994 08:49:37 GMT``; recipients must also read the obsolete RFC 850
and asctime forms: ``email.utils.parsedate_to_datetime`` reads all three, as robustly as RFC
9110 5.6.7 asks of a recipient). The answer is seconds from
``now``, or ``None`` when the header is absent or is not one of the two forms:

* junk ("soon", "1.5", "+5", "0x10", "inf", non-ASCII digits, an impossible date) is ``None``,
  so the caller's own backoff applies, as if no header had been sent;
* a negative delta ("-5") is not ``delta-seconds`` either: ``None``;
* a date already past means "now": ``0.0`` (as urllib3 reads it; a server clock a little behind
  ours is the usual cause);
* anything longer than ``MAX_RETRY_AFTER`` (a day) is that long. A server's typo or a date
  years ahead must not park a connection indefinitely (nor overflow ``now + timedelta``); the
  rate-limit gate pauses a key shorter still (``RequestGate.max_pause``), and the worker's own
  retry looks again after a day at the latest.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86_400.0
"""The longest wait a ``Retry-After`` can ask for, in seconds (one day)."""

_DELTA_SECONDS = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() would take "²" and "٣"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``now`` (timezone-aware; by default the clock) per ``value``, in
    ``[0, MAX_RETRY_AFTER]``, or ``None`` when ``value`` is absent or neither delta-seconds nor an HTTP-date."""
    if value is None:
        return None
    text = value.strip(" \t")  # the field's optional white space (RFC 9110 5.5)
    if _DELTA_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)  # float(): any length, a long one is inf (int() stops at 4,300 digits)
    try:  # refuses signed and fractional numbers too ("-5", "1.5", "+5")
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" carry no zone; HTTP-dates are in GMT
        when = when.replace(tzinfo=UTC)
    moment = now if now is not None else datetime.now(UTC)
    try:
        seconds = (when - moment).total_seconds()
    except OverflowError:
        return MAX_RETRY_AFTER
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
