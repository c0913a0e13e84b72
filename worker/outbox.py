"""Outbox dispatch: claim pending rows in order of creation, run their handlers, mark them done.

Claiming is a short write transaction that stamps a lease (``claimed_until``) on a batch of
rows: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets several workers claim disjoint batches
at once; on SQLite the ``BEGIN IMMEDIATE`` write transaction serialises claims. Handlers
run outside any transaction (they talk to SMTP servers and HTTP endpoints). A worker that
dies mid-batch simply stops: its lease runs out and another worker claims the rows again.

Delivery is therefore at-least-once, and each handler must be idempotent. Two layers make
that cheap: a handler that finished for an event is recorded in ``outbox_handler_runs`` and
never re-run for it, and the senders keep their own idempotency keys (``notification_log``
for e-mail, the ``(event_id, subscription_id)`` key of ``webhook_deliveries``).

Handlers are registered per event type (``"*"`` for all)::

    from worker.outbox import register_handler

    @register_handler("booking.confirmed", "booking.rescheduled", "booking.cancelled")
    def push_to_calendar(store: Store, event: OutboxEvent) -> None: ...
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import outbox_handler_runs
from worker.db import insert_ignore, skip_locked
from worker.settings import get_worker_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    event_id: str
    event_type: str
    aggregate_id: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


Handler = Callable[[Store, OutboxEvent], None]


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    handler: Handler


HANDLERS: dict[str, list[Registration]] = {}


def register_handler(*event_types: str, name: str | None = None) -> Callable[[Handler], Handler]:
    """Decorator: run ``handler(store, event)`` for each event of these types (``"*"``: all).

    ``name`` (default: module and function name) is the key under which a finished run is
    recorded; renaming a handler makes it run again for events not yet dispatched only.
    """

    def decorate(handler: Handler) -> Handler:
        add_handler(event_types, handler, name=name)
        return handler

    return decorate


def add_handler(event_types: Iterable[str], handler: Handler, name: str | None = None) -> None:
    key = name or f"{handler.__module__}.{handler.__qualname__}"
    for event_type in event_types:
        entries = HANDLERS.setdefault(event_type, [])
        entries[:] = [r for r in entries if r.name != key] + [Registration(key, handler)]


def handlers_for(event_type: str) -> list[Registration]:
    return [*HANDLERS.get(event_type, []), *HANDLERS.get("*", [])]


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"], event_id=row["event_id"], event_type=row["event_type"], aggregate_id=row["aggregate_id"],
        payload=dict(row["payload"]), created_at=row["created_at"], attempts=row["attempts"],
    )


def claim(store: Store, limit: int, lease: timedelta, now: datetime | None = None) -> list[OutboxEvent]:
    """Lease up to ``limit`` undispatched, unleased rows, oldest first."""
    moment = now or utcnow()
    with store.write() as conn:
        stmt = (
            select(outbox)
            .where(
                outbox.c.dispatched_at.is_(None),
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= moment),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        rows = conn.execute(skip_locked(conn, stmt, outbox)).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(claimed_until=moment + lease, attempts=outbox.c.attempts + 1)
        )
    return [_event({**r, "attempts": r["attempts"] + 1}) for r in rows]


def _done_handlers(store: Store, event_id: str) -> set[str]:
    with store.read() as conn:
        rows = conn.execute(select(outbox_handler_runs.c.handler).where(outbox_handler_runs.c.event_id == event_id))
        return {r[0] for r in rows}


def _record_handler(store: Store, event_id: str, name: str) -> None:
    with store.write() as conn:
        insert_ignore(conn, outbox_handler_runs, {"event_id": event_id, "handler": name, "done_at": utcnow()})


def _retry_delay(attempts: int) -> float:
    knobs = get_worker_settings()
    delay = min(knobs.outbox_retry_base_seconds * 2 ** max(attempts - 1, 0), knobs.outbox_retry_max_seconds)
    return delay * random.uniform(0.5, 1.0)


def handle(store: Store, event: OutboxEvent) -> None:
    """Run every handler of the event that has not finished for it yet; raise on the first failure."""
    done = _done_handlers(store, event.event_id)
    for reg in handlers_for(event.event_type):
        if reg.name in done:
            continue
        reg.handler(store, event)
        _record_handler(store, event.event_id, reg.name)


def _mark_dispatched(store: Store, event: OutboxEvent) -> None:
    with store.write() as conn:
        conn.execute(
            update(outbox).where(outbox.c.id == event.id).values(dispatched_at=utcnow(), claimed_until=None)
        )


def _mark_failed(store: Store, event: OutboxEvent, error: BaseException) -> None:
    knobs = get_worker_settings()
    message = f"{type(error).__name__}: {error}"[:2000]
    now = utcnow()
    values: dict[str, Any] = {"last_error": message}
    if event.attempts >= knobs.outbox_max_attempts:
        values.update(dispatched_at=now, claimed_until=None, last_error=f"gave up: {message}"[:2000])
        log.error("outbox event abandoned", extra={"event_id": event.event_id, "event_type": event.event_type,
                                                   "attempts": event.attempts, "error": message})
    else:
        values["claimed_until"] = now + timedelta(seconds=_retry_delay(event.attempts))
        log.warning("outbox handler failed, will retry", extra={
            "event_id": event.event_id, "event_type": event.event_type, "attempts": event.attempts, "error": message})
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.id == event.id).values(**values))


def _release(store: Store, events: list[OutboxEvent]) -> None:
    """Give back claimed rows this worker will not get to before its lease ends."""
    if not events:
        return
    with store.write() as conn:
        conn.execute(
            update(outbox)
            .where(and_(outbox.c.id.in_([e.id for e in events]), outbox.c.dispatched_at.is_(None)))
            .values(claimed_until=None, attempts=outbox.c.attempts - 1)
        )


@dataclass(slots=True)
class DispatchResult:
    dispatched: int = 0
    failed: int = 0

    @property
    def touched(self) -> int:
        return self.dispatched + self.failed


def dispatch_batch(store: Store, limit: int | None = None, lease: timedelta | None = None) -> DispatchResult:
    """Claim one batch and dispatch it, in order; stop early if the lease is about to run out."""
    knobs = get_worker_settings()
    lease = lease or timedelta(seconds=knobs.outbox_lease_seconds)
    events = claim(store, limit or knobs.outbox_batch, lease)
    result = DispatchResult()
    deadline = time.monotonic() + lease.total_seconds() * 0.8
    for index, event in enumerate(events):
        if time.monotonic() > deadline:
            _release(store, events[index:])
            break
        try:
            handle(store, event)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried with backoff
            result.failed += 1
            _mark_failed(store, event, exc)
            continue
        _mark_dispatched(store, event)
        result.dispatched += 1
        log.debug("outbox event dispatched", extra={"event_id": event.event_id, "event_type": event.event_type})
    return result


def drain(store: Store, budget_seconds: float | None = None) -> DispatchResult:
    """Dispatch batches until none is left or the time budget is spent."""
    budget = get_worker_settings().outbox_drain_seconds if budget_seconds is None else budget_seconds
    stop = time.monotonic() + budget
    total = DispatchResult()
    while True:
        batch = dispatch_batch(store)
        total.dispatched += batch.dispatched
        total.failed += batch.failed
        if batch.touched == 0 or time.monotonic() >= stop:
            return total


def pending_count(store: Store) -> int:
    from sqlalchemy import func

    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None)))
                   .scalar_one())
