"""Generated busy events for the fakes: deterministic per account, in hours calbook's bookings avoid.

Every fake event lies between 00:00 and 08:00 UTC, and the benchmark books between 09:00
and 21:00 UTC, so imported busy time never makes a booking fail (conflicts are not what this
benchmark measures); the slot lists still carry the busy time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class FakeEvent:
    uid: str
    start: datetime
    end: datetime


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def generated(account: str, count: int, serial: int = 0) -> list[FakeEvent]:
    """``count`` one-hour events of ``account`` over the next 60 days, 00:00-08:00 UTC."""
    rng = random.Random(f"{account}/{serial}")
    return [one(account, rng, f"{serial}-{n}") for n in range(count)]


def one(account: str, rng: random.Random, suffix: str) -> FakeEvent:
    start = DAY0 + timedelta(days=rng.randrange(1, 60), hours=rng.randrange(0, 7))
    return FakeEvent(f"{suffix}-{account}@bench", start, start + timedelta(hours=1))


def vevent(event: FakeEvent) -> str:
    return (f"BEGIN:VEVENT\r\nUID:{event.uid}\r\nDTSTAMP:{stamp(DAY0)}\r\nDTSTART:{stamp(event.start)}\r\n"
            f"DTEND:{stamp(event.end)}\r\nSUMMARY:busy\r\nEND:VEVENT\r\n")


def vcalendar(events: list[FakeEvent]) -> bytes:
    inner = "".join(vevent(e) for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calbook bench//EN\r\n{inner}END:VCALENDAR\r\n".encode()
