"""The load generator: bookings that get confirmed, and slot reads, at fixed rates.

It runs in a process of its own (``run`` is the entry point, started with the ``spawn``
method), so that its timing does not share a GIL with the fakes; it speaks HTTP/1.1 over
keep-alive connections with the minimal client of ``bench/http_wire.py``, as
``bench/api_load.py`` does, so that it costs the 2-core machine little. Rates are open-loop:
a request that answers late does not slow the next one down, and the latency is measured from
when the request was due.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.http_wire import Connection, http_request


@dataclass
class Plan:
    port: int
    seconds: float
    slots_per_second: float
    bookings_per_minute: float
    experts: list[tuple[str, str]]
    """bookable experts: (id, token)"""
    bookers: list[str]
    """tokens"""
    readers: int = 4


@dataclass
class Outcome:
    slot_latencies: list[float] = field(default_factory=list)
    slot_statuses: Counter[int] = field(default_factory=Counter)
    booking_statuses: Counter[str] = field(default_factory=Counter)
    confirmed: list[tuple[str, str, float]] = field(default_factory=list)
    """(booking id, expert id, wall time the confirm was sent)"""


def slot_targets(plan: Plan) -> Iterator[bytes]:
    rng = random.Random(1)
    today = datetime.now(UTC).date()
    reader = plan.bookers[0]
    while True:
        expert, _ = rng.choice(plan.experts)
        day = today + timedelta(days=rng.randrange(1, 15))
        yield http_request("GET", f"/v1/experts/{expert}/slots?date={day}&duration=60", reader)


def booking_targets(plan: Plan) -> Iterator[tuple[str, str, str]]:
    """(expert id, expert token, start) for slots never booked before in this run: day 2..28, 09..20 UTC."""
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    for day in range(27):
        for hour in range(9, 21):
            start = (first + timedelta(days=day, hours=hour)).isoformat().replace("+00:00", "Z")
            for expert, token in plan.experts:
                yield expert, token, start


async def _paced(rate: float, seconds: float, work: Any) -> None:
    """Start ``work(due)`` every 1/rate seconds for ``seconds``, without waiting for it."""
    if rate <= 0:
        return
    began = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    for n in itertools.count():
        due = began + n / rate
        if due - began > seconds:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(work(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=60)


async def _run(plan: Plan) -> Outcome:
    outcome = Outcome()
    readers = [Connection(plan.port) for _ in range(plan.readers)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in readers:
        free.put_nowait(connection)
    targets = slot_targets(plan)

    async def read_slots(due: float) -> None:
        connection = await free.get()
        try:
            status, _ = await connection.call(next(targets))
            outcome.slot_latencies.append(time.perf_counter() - due)
            outcome.slot_statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError):
            outcome.slot_statuses[0] += 1
            connection.writer = None
        finally:
            free.put_nowait(connection)

    bookings = booking_targets(plan)
    users = itertools.cycle(plan.bookers)
    writers: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(2):
        writers.put_nowait(Connection(plan.port))

    async def book(_due: float) -> None:
        connection = await writers.get()
        try:
            expert, token, start = next(bookings)
            body = json.dumps({"expertId": expert, "startTime": start, "durationMinutes": 60,
                               "type": "video_call"}).encode()
            status, answer = await connection.call(http_request("POST", "/v1/bookings", next(users), body))
            outcome.booking_statuses[f"create {status}"] += 1
            if status != 201:
                return
            booking_id = json.loads(answer)["id"]
            sent = time.time()
            status, _ = await connection.call(http_request("POST", f"/v1/bookings/{booking_id}/confirm", token))
            outcome.booking_statuses[f"confirm {status}"] += 1
            if status == 200:
                outcome.confirmed.append((booking_id, expert, sent))
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            outcome.booking_statuses["error"] += 1
            connection.writer = None
        finally:
            writers.put_nowait(connection)

    await asyncio.gather(_paced(plan.slots_per_second, plan.seconds, read_slots),
                         _paced(plan.bookings_per_minute / 60, plan.seconds, book))
    return outcome


def run(plan: Plan) -> Outcome:
    return asyncio.run(_run(plan))
