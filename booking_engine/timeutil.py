"""Wall-clock arithmetic for the expert's timezone, with the DST rules of docs/domain.md#time.

A local wall time maps to one instant, except on DST days:
- in the spring-forward gap it does not exist: a slot start there is skipped, and a window
  bound there means the transition instant (every earlier instant reads earlier on the
  wall, every later one later);
- in the fall-back overlap it exists twice: we take the first occurrence (``fold=0``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from booking_engine.errors import ValidationError

MINUTES_PER_DAY = 24 * 60


#: Keys a zone directory holds that are not places: the machine's own zone (``localtime``),
#: the placeholder for "not set" (``Factory``) and tzcode's rule template (``posixrules``).
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def iana_names() -> frozenset[str]:
    """The IANA zone names: the ``tzdata`` package's list (the same on every machine), else the
    system's; never the ``posix/`` and ``right/`` variants or the keys of ``NOT_PLACES``."""
    try:
        names = set(resources.files("tzdata").joinpath("zones").read_text().split())
    except (ModuleNotFoundError, OSError):
        names = set(available_timezones())
    return frozenset(n for n in names if not n.startswith(("posix/", "right/"))) - NOT_PLACES


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """An IANA zone; an unknown, malformed or non-IANA key (``localtime``, ``Factory``,
    ``right/UTC``, a file path) is a ``validation_error``."""
    if not isinstance(name, str) or name not in iana_names():
        raise ValidationError(f"unknown timezone {name!r}", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError(f"unknown timezone {name!r}", field="timezone") from exc


def wall(day: date, minute_of_day: int) -> datetime:
    """Naive local wall time ``minute_of_day`` minutes after local midnight (1440 = next midnight)."""
    return datetime.combine(day, time()) + timedelta(minutes=minute_of_day)


def exists(naive: datetime, tz: tzinfo) -> bool:
    aware = naive.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def start_instant(naive: datetime, tz: tzinfo) -> datetime | None:
    """The UTC instant of a slot start, or ``None`` when the wall time does not exist."""
    aware = naive.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return utc


def bound_instant(naive: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of a window bound; a bound in a DST gap is the transition instant."""
    utc = start_instant(naive, tz)
    if utc is not None:
        return utc
    # In the gap: fold=1 reads the wall time with the offset after the jump and lands before
    # the transition, fold=0 with the offset before it and lands after. Bisect on minutes.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    target = naive
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(second=0, microsecond=0)
        if mid.astimezone(tz).replace(tzinfo=None) < target:
            lo = mid
        else:
            hi = mid
    # ``hi`` is the first whole minute reading at or after the wall time: the transition.
    return hi


def local_day_range(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC bounds ``[start, end)`` of a local calendar date."""
    return bound_instant(wall(day, 0), tz), bound_instant(wall(day, MINUTES_PER_DAY), tz)


def to_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; a naive one is a ``validation_error`` (docs/domain.md#time)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError("timestamps must carry a UTC offset or 'Z'")
    return value.astimezone(UTC)


def iso_z(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")
