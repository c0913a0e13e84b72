"""Outbox dispatch: claim pending rows in order of creation, run their handlers, mark them done.

Claiming is a short write transaction that stamps a lease (``claimed_until``) on a batch of
rows: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets several workers claim disjoint batches
at once; on SQLite the ``BEGIN IMMEDIATE`` write transaction serialises claims. Handlers
run outside any transaction (they talk to SMTP servers and HTTP endpoints). A worker that
dies mid-batch simply stops: its lease runs out and another worker claims the rows again.

Each handler of an event runs on its own (docs/worker.md#outbox): its own attempts, backoff
and outcome in ``outbox_handler_runs``. A handler that fails is retried later with backoff,
and given up alone after ``outbox_max_attempts``; the other handlers of the event run anyway
and are never re-run once done. When a handler fails with an outage (connection refused, a
timeout, a dropped SMTP session), the same handler is not tried again for the rest of the
batch, so an SMTP server that hangs costs one timeout per batch, not one per event, and the
webhooks and calendar pushes behind it keep flowing. The event is dispatched once every
handler is done or given up; until then it waits (``claimed_until``) for its next due handler.

Delivery is at-least-once, and each handler must be idempotent: a worker killed mid-handler
runs it again after the lease. The senders keep their own idempotency keys
(``notification_log`` for e-mail, the ``(event_id, subscription_id)`` key of
``webhook_deliveries``, deterministic calendar ids).

Leases name their holder (``claimed_by``, the worker's id, see ``worker.heartbeat``): a
restarted worker takes back at start what its dead predecessor held, and a lease whose holder
stopped beating is claimable before it runs out; a long batch renews its lease as it goes.

The handlers are a table handed in (``worker.wiring.outbox_handlers``): a name (the key under
which a finished run is recorded) to the event types it handles (``"*"``: all) and the function.

A handler can have a drain of its own (``separate``; the calendar push, on ``calbook.push``): the
dispatch hands it off as a pending run, due now, for the whole claimed batch, and does not wait
for it; ``drain_separate`` claims the due runs of that handler (``SKIP LOCKED``, the run's
``next_attempt_at`` as its lease) with the same attempts, backoff and give-up. Whichever side
finishes an event's last handler marks it dispatched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, or_, select, update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from booking_engine.store.worker_tables import outbox_handler_runs, webhook_deliveries, worker_heartbeats
from config.retry import RetryPolicy
from config.settings import Settings
from worker.db import insert_ignore, skip_locked, upsert
from worker.identity import current_worker_id

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
class OutboxHandler:
    """One row of the handler table: the event types it handles (``"*"``: all) and what it runs."""

    event_types: tuple[str, ...]
    run: Handler


HandlerTable = Mapping[str, OutboxHandler]
"""Handler name -> handler. Renaming one makes it run again for events not yet dispatched only."""


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    handler: Handler


def handlers_for(table: HandlerTable, event_type: str) -> list[Registration]:
    """The handlers of one event type, in table order."""
    return [Registration(name, h.run) for name, h in table.items()
            if event_type in h.event_types or "*" in h.event_types]


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"], event_id=row["event_id"], event_type=row["event_type"], aggregate_id=row["aggregate_id"],
        payload=dict(row["payload"]), created_at=row["created_at"], attempts=row["attempts"],
    )


def stale_worker_ids(moment: datetime, settings: Settings) -> Any:
    """Subquery: the workers whose heartbeat is too old, taken for dead (``worker.heartbeat``)."""
    max_age = timedelta(seconds=settings.worker_heartbeat_max_age_seconds)
    return select(worker_heartbeats.c.worker_id).where(worker_heartbeats.c.last_seen_at < moment - max_age)


def _claimable(moment: datetime, settings: Settings) -> Any:
    """Not dispatched, and not leased: no lease, a lease that ran out, or a lease whose holder
    stopped beating."""
    return and_(
        outbox.c.dispatched_at.is_(None),
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= moment,
            outbox.c.claimed_by.in_(stale_worker_ids(moment, settings))),
    )


def claim(
    store: Store, limit: int, lease: timedelta, *, settings: Settings, now: datetime | None = None,
    holder: str | None = None,
) -> list[OutboxEvent]:
    """Lease up to ``limit`` claimable rows, oldest first, for ``holder`` (default: this worker)."""
    moment = now or utcnow()
    holder = holder if holder is not None else current_worker_id()
    with store.write() as conn:
        stmt = select(outbox).where(_claimable(moment, settings)).order_by(outbox.c.id).limit(limit)
        rows = conn.execute(skip_locked(conn, stmt, outbox)).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(claimed_until=moment + lease, claimed_by=holder, attempts=outbox.c.attempts + 1)
        )
    return [_event({**r, "attempts": r["attempts"] + 1}) for r in rows]


def _renew(store: Store, events: list[OutboxEvent], lease: timedelta) -> None:
    """Extend the lease of claimed rows this worker has not finished yet."""
    if not events:
        return
    with store.write() as conn:
        conn.execute(
            update(outbox)
            .where(and_(outbox.c.id.in_([e.id for e in events]), outbox.c.dispatched_at.is_(None)))
            .values(claimed_until=utcnow() + lease)
        )


# --- each handler's state for an event --------------------------------------------------

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True, slots=True)
class HandlerState:
    status: str
    attempts: int
    next_attempt_at: datetime | None


def _handler_states(store: Store, event_id: str) -> dict[str, HandlerState]:
    runs = outbox_handler_runs.c
    with store.read() as conn:
        rows = conn.execute(
            select(runs.handler, runs.status, runs.attempts, runs.next_attempt_at).where(runs.event_id == event_id)
        )
        return {r.handler: HandlerState(r.status, r.attempts, r.next_attempt_at) for r in rows}


def _save_state(store: Store, event_id: str, name: str, values: dict[str, Any]) -> None:
    with store.write() as conn:
        upsert(conn, outbox_handler_runs, {"event_id": event_id, "handler": name, **values},
               key=("event_id", "handler"))


def _record_failure(
    store: Store, event: OutboxEvent, name: str, before: HandlerState | None, error: BaseException,
    policy: RetryPolicy,
) -> HandlerState:
    attempts = (before.attempts if before else 0) + 1
    message = f"{type(error).__name__}: {error}"[:2000]
    now = utcnow()
    fields = {"event_id": event.event_id, "event_type": event.event_type, "handler": name, "attempts": attempts,
              "error": message}
    if policy.gives_up_after(attempts):
        _save_state(store, event.event_id, name, {"status": FAILED, "attempts": attempts, "next_attempt_at": None,
                                                  "last_error": f"gave up: {message}"[:2000], "done_at": now})
        log.error("outbox handler abandoned", extra=fields)
        return HandlerState(FAILED, attempts, None)
    due = now + timedelta(seconds=policy.delay(attempts - 1))
    _save_state(store, event.event_id, name, {"status": PENDING, "attempts": attempts, "next_attempt_at": due,
                                              "last_error": message, "done_at": None})
    log.warning("outbox handler failed, will retry", extra=fields)
    return HandlerState(PENDING, attempts, due)


def is_outage(error: BaseException) -> bool:
    """A failure of the channel rather than of this event: connection refused or reset, a
    timeout, a dropped SMTP session (``smtplib`` errors are ``OSError``s), a transport error."""
    return isinstance(error, OSError | TimeoutError | httpx.TransportError)


@dataclass(slots=True)
class Outcome:
    """What one pass over an event's handlers left: finished, or the time its next handler is due."""

    finished: bool
    next_due: datetime | None = None
    errors: list[str] = field(default_factory=list)


HANDED_OFF_RECHECK = timedelta(minutes=5)
"""An event that waits only for handlers of their own drain is looked at again after this (their
drain marks it dispatched when it finishes the last one; this is the backstop)."""


def handle(
    store: Store, event: OutboxEvent, handlers: HandlerTable, *, settings: Settings,
    tripped: dict[str, datetime] | None = None, separate: tuple[str, ...] = (),
) -> Outcome:
    """Run each handler of the event that is due, each on its own; never raises for a handler.

    ``tripped`` (handler name -> when to try again) is the batch's memory of handlers that just
    failed with an outage: they are not tried for this event either, only rescheduled.
    ``separate`` names handlers that run in a drain of their own (``drain_separate``): they are
    handed off (a pending run, due now) instead of run here, and not waited for.
    """
    tripped = {} if tripped is None else tripped
    states = _handler_states(store, event.event_id)
    now = utcnow()
    waiting: list[datetime] = []
    errors: list[str] = []
    handed_off = False
    policy = settings.worker.outbox_retry()
    for reg in handlers_for(handlers, event.event_type):
        state = states.get(reg.name)
        if state is not None and state.status in (DONE, FAILED):
            continue
        if reg.name in separate:
            if state is None:
                _hand_off(store, [event], handlers, (reg.name,))
            handed_off = True
            continue
        if state is not None and state.next_attempt_at is not None and state.next_attempt_at > now:
            waiting.append(state.next_attempt_at)
            continue
        if reg.name in tripped:
            waiting.append(tripped[reg.name])
            continue
        try:
            reg.handler(store, event)
        except Exception as exc:  # noqa: BLE001 - any handler failure is that handler's alone
            after = _record_failure(store, event, reg.name, state, exc, policy)
            errors.append(f"{reg.name}: {type(exc).__name__}: {exc}")
            if after.next_attempt_at is not None:
                waiting.append(after.next_attempt_at)
                if is_outage(exc):
                    tripped[reg.name] = after.next_attempt_at
            continue
        _save_state(store, event.event_id, reg.name, {"status": DONE, "attempts": (state.attempts if state else 0) + 1,
                                                      "next_attempt_at": None, "last_error": None, "done_at": utcnow()})
    if waiting:
        return Outcome(False, min(waiting), errors)
    if handed_off:
        return Outcome(False, now + HANDED_OFF_RECHECK, errors)
    return Outcome(True, None, errors)


# --- handlers with a drain of their own (the calendar push) ---------------------------------


def _hand_off(store: Store, events: list[OutboxEvent], handlers: HandlerTable, separate: tuple[str, ...]) -> int:
    """A pending run, due now, for each separate handler of these events that has none yet: the
    handler's own drain claims it from there. Returns how many were handed off."""
    rows = [{"event_id": e.event_id, "handler": reg.name, "status": PENDING, "attempts": 0,
             "next_attempt_at": utcnow()}
            for e in events for reg in handlers_for(handlers, e.event_type) if reg.name in separate]
    if not rows:
        return 0
    with store.write() as conn:
        inserted = insert_ignore(conn, outbox_handler_runs, rows)
    return len(rows) if inserted < 0 else inserted  # a driver that cannot count: assume all (a kick too many)


def _finish_if_done(store: Store, event: OutboxEvent, handlers: HandlerTable) -> bool:
    """Mark the event dispatched if every one of its handlers is done or given up (read afresh:
    the main dispatch and a separate drain may finish an event's handlers at the same time; the
    later of the two sees both)."""
    states = _handler_states(store, event.event_id)
    names = [reg.name for reg in handlers_for(handlers, event.event_type)]
    if not all(n in states and states[n].status in (DONE, FAILED) for n in names):
        return False
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.id == event.id, outbox.c.dispatched_at.is_(None))
                     .values(dispatched_at=utcnow(), claimed_until=None, claimed_by=None))
    return True


def _claim_runs(store: Store, name: str, limit: int, lease: timedelta) -> list[tuple[OutboxEvent, HandlerState]]:
    """Lease up to ``limit`` due pending runs of handler ``name``, oldest due first: their
    ``next_attempt_at`` moves to the lease's end, so a drain killed mid-batch leaves them due
    again then (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: drains claim disjoint runs)."""
    runs = outbox_handler_runs.c
    moment = utcnow()
    with store.write() as conn:
        stmt = (select(runs.event_id, runs.attempts)
                .where(runs.handler == name, runs.status == PENDING, runs.next_attempt_at <= moment)
                .order_by(runs.next_attempt_at).limit(limit))
        claimed = {r.event_id: r.attempts for r in conn.execute(skip_locked(conn, stmt, outbox_handler_runs))}
        if not claimed:
            return []
        conn.execute(update(outbox_handler_runs)
                     .where(runs.handler == name, runs.event_id.in_(list(claimed)))
                     .values(next_attempt_at=moment + lease))
        rows = conn.execute(select(outbox).where(outbox.c.event_id.in_(list(claimed)))
                            .order_by(outbox.c.id)).mappings().all()
    return [(_event(r), HandlerState(PENDING, claimed[r["event_id"]], moment + lease)) for r in rows]


def drain_separate(
    store: Store, handlers: HandlerTable, name: str, *, settings: Settings, budget_seconds: float | None = None,
) -> DispatchResult:
    """Run the due runs of one separate handler (the calendar push, on ``calbook.push``) in batches
    until none is left or the budget is spent: the same attempts, backoff and give-up as in the
    main dispatch, and the event is marked dispatched when this was its last handler."""
    knobs = settings.worker
    lease = timedelta(seconds=knobs.outbox_lease_seconds)
    policy = knobs.outbox_retry()
    run = handlers[name].run
    stop = time.monotonic() + (knobs.outbox_drain_seconds if budget_seconds is None else budget_seconds)
    total = DispatchResult()
    while time.monotonic() < stop:
        batch = _claim_runs(store, name, knobs.outbox_batch, lease)
        if not batch:
            break
        tripped: datetime | None = None
        for event, state in batch:
            if tripped is not None:  # an outage: the rest of the batch waits with it
                _save_state(store, event.event_id, name, {"status": PENDING, "attempts": state.attempts,
                                                          "next_attempt_at": tripped})
                total.deferred += 1
                continue
            try:
                run(store, event)
            except Exception as exc:  # noqa: BLE001 - the handler's failure is its own
                after = _record_failure(store, event, name, state, exc, policy)
                total.failed += 1
                if after.next_attempt_at is not None and is_outage(exc):
                    tripped = after.next_attempt_at
            else:
                _save_state(store, event.event_id, name, {"status": DONE, "attempts": state.attempts + 1,
                                                          "next_attempt_at": None, "last_error": None,
                                                          "done_at": utcnow()})
                total.dispatched += 1
            _finish_if_done(store, event, handlers)
    return total


def _mark_dispatched(store: Store, event: OutboxEvent, errors: list[str]) -> None:
    values: dict[str, Any] = {"dispatched_at": utcnow(), "claimed_until": None, "claimed_by": None}
    if errors:
        values["last_error"] = "; ".join(errors)[:2000]
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.id == event.id).values(**values))


def _mark_waiting(store: Store, event: OutboxEvent, outcome: Outcome) -> None:
    """Give the row back until its next handler is due."""
    values: dict[str, Any] = {"claimed_until": outcome.next_due, "claimed_by": None}
    if outcome.errors:
        values["last_error"] = "; ".join(outcome.errors)[:2000]
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.id == event.id).values(**values))


def _release(store: Store, events: list[OutboxEvent]) -> None:
    """Give back claimed rows this worker will not get to in this batch."""
    if not events:
        return
    with store.write() as conn:
        conn.execute(
            update(outbox)
            .where(and_(outbox.c.id.in_([e.id for e in events]), outbox.c.dispatched_at.is_(None)))
            .values(claimed_until=None, claimed_by=None, attempts=outbox.c.attempts - 1)
        )


def release_leases_of(store: Store, holders: list[str]) -> int:
    """Free every lease (outbox rows and webhook deliveries) held by these dead workers."""
    if not holders:
        return 0
    with store.write() as conn:
        freed = conn.execute(
            update(outbox)
            .where(and_(outbox.c.claimed_by.in_(holders), outbox.c.dispatched_at.is_(None)))
            .values(claimed_until=None, claimed_by=None)
        ).rowcount or 0
        freed += conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.claimed_by.in_(holders))
            .values(claimed_until=None, claimed_by=None)
        ).rowcount or 0
    return int(freed)


@dataclass(slots=True)
class DispatchResult:
    """Events ``dispatched`` (every handler done), ``failed`` (a handler failed in this pass) and
    ``deferred`` (waiting for a handler that is not due); ``touched`` is every event claimed."""

    dispatched: int = 0
    failed: int = 0
    deferred: int = 0
    handed_off: int = 0
    """Runs handed to a separate drain (``separate``): its kick is worth sending."""

    @property
    def touched(self) -> int:
        return self.dispatched + self.failed + self.deferred


def dispatch_batch(
    store: Store, handlers: HandlerTable, *, settings: Settings, limit: int | None = None,
    lease: timedelta | None = None, separate: tuple[str, ...] = (),
) -> DispatchResult:
    """Claim one batch and run it, in order; renew the lease as it goes, stop at the drain budget.
    The ``separate`` handlers of the whole batch are handed off to their own drain first, so a
    slow one (a calendar server) never waits behind, or holds up, the e-mails of the batch."""
    knobs = settings.worker
    lease = lease or timedelta(seconds=knobs.outbox_lease_seconds)
    events = claim(store, limit or knobs.outbox_batch, lease, settings=settings)
    result = DispatchResult()
    if separate and events:
        result.handed_off = _hand_off(store, events, handlers, separate)
    renew_at = time.monotonic() + lease.total_seconds() / 2
    tripped: dict[str, datetime] = {}
    for index, event in enumerate(events):
        if time.monotonic() > renew_at:
            _renew(store, events[index:], lease)
            renew_at = time.monotonic() + lease.total_seconds() / 2
        outcome = handle(store, event, handlers, settings=settings, tripped=tripped, separate=separate)
        if outcome.errors:
            result.failed += 1
        elif outcome.finished:
            result.dispatched += 1
        else:
            result.deferred += 1
        if outcome.finished:
            _mark_dispatched(store, event, outcome.errors)
            log.debug("outbox event dispatched", extra={"event_id": event.event_id, "event_type": event.event_type})
        else:
            _mark_waiting(store, event, outcome)
            if separate:
                _finish_if_done(store, event, handlers)
    return result


def drain(
    store: Store, handlers: HandlerTable, *, settings: Settings, budget_seconds: float | None = None,
    separate: tuple[str, ...] = (),
) -> DispatchResult:
    """Dispatch batches until none is left or the time budget is spent (``separate``: handlers
    left to their own drain, see ``dispatch_batch``)."""
    budget = settings.worker.outbox_drain_seconds if budget_seconds is None else budget_seconds
    stop = time.monotonic() + budget
    total = DispatchResult()
    while True:
        batch = dispatch_batch(store, handlers, settings=settings, separate=separate)
        total.dispatched += batch.dispatched
        total.failed += batch.failed
        total.deferred += batch.deferred
        total.handed_off += batch.handed_off
        if batch.touched == 0 or time.monotonic() >= stop:
            return total


def pending_count(store: Store) -> int:
    from sqlalchemy import func

    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None)))
                   .scalar_one())


def retry_given_up(store: Store, event_id: str, now: datetime | None = None) -> list[str] | None:
    """An operator's re-send (``calbook admin resend``): the handlers given up on for this event are
    due again, with a fresh count of attempts, and the event is undispatched until they finish.

    Handlers that finished are not run again (their work was done, and their senders' keys would
    refuse a repeat anyway). Returns the handlers made due; ``None`` when the outbox has no such
    event (never written, or pruned after the retention window).
    """
    moment = now or utcnow()
    runs = outbox_handler_runs.c
    with store.write() as conn:
        if conn.execute(select(outbox.c.id).where(outbox.c.event_id == event_id)).first() is None:
            return None
        given_up = [r[0] for r in conn.execute(
            select(runs.handler).where(runs.event_id == event_id, runs.status == FAILED).order_by(runs.handler))]
        if given_up:
            conn.execute(
                update(outbox_handler_runs)
                .where(runs.event_id == event_id, runs.handler.in_(given_up))
                .values(status=PENDING, attempts=0, next_attempt_at=moment, last_error=None, done_at=None)
            )
            conn.execute(
                update(outbox).where(outbox.c.event_id == event_id)
                .values(dispatched_at=None, claimed_until=None, claimed_by=None)
            )
    if given_up:
        log.info("outbox event due again", extra={"event_id": event_id, "handlers": ",".join(given_up)})
    return given_up
