"""The sync schedule (docs/sync.md#scheduling): due times, claims, jitter, backoff and the time budget.

On SQLite and PostgreSQL, against a real Radicale where a sync runs. The claims are the
connection service's own (``claim_due_syncs``); the PostgreSQL test holds a competing claim's
row locks open in another transaction to show ``SKIP LOCKED`` passing them by.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from booking_engine.clock import utcnow
from booking_engine.connections import ConnectionStatus
from booking_engine.model import AvailabilitySettings
from booking_engine.services import connections, sync_runs
from booking_engine.services.sync_runs import SyncEnd
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections as cc
from booking_engine.sync_schedule import SyncSchedule
from config.settings import Settings
from connectors.base import TransientError
from tests.support.caldav import Direct
from tests.support.caldav_servers import Fault, FaultProxy
from tests.support.sync import EXPERT, connect, day, event_text, spans
from worker import wiring

LEASE = timedelta(minutes=10)


def _row(store: Store, connection_id: str) -> Any:
    with store.read() as conn:
        return conn.execute(select(cc).where(cc.c.id == connection_id)).mappings().one()


def _many(store: Store, calendar_url: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append(connect(store, calendar_url, expert_id=f"expert-{i}"))
    return ids


def test_claims_from_two_threads_are_disjoint(store: Store, calendar_url: str) -> None:
    ids = _many(store, calendar_url, 40)
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def claimer(slot: int) -> None:
        start.wait()
        for _ in range(5):
            got[slot] += [c.connection_id for c in connections.claim_due_syncs(store, 5, LEASE)]

    threads = [threading.Thread(target=claimer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = got[0] + got[1]
    assert len(claimed) == len(set(claimed)) == 40 and set(claimed) == set(ids)
    assert connections.claim_due_syncs(store, 50, LEASE) == []  # every one leased
    assert connections.syncs_in_flight(store) == 40
    # A lease that ran out is claimable again (a lost message), with a new token.
    later = utcnow() + LEASE + timedelta(seconds=1)
    again = connections.claim_due_syncs(store, 50, LEASE, now=later)
    assert len(again) == 40


def test_postgresql_claim_skips_rows_another_claim_holds(pg_store: Store, calendar_url: str) -> None:
    ids = _many(pg_store, calendar_url, 10)
    locked = sorted(ids)[:4]
    holder = pg_store.engine.connect()
    held = holder.begin()
    try:
        # Another claimer, mid-transaction, holding its rows (as the inner select of a claim does).
        holder.execute(select(cc.c.id).where(cc.c.id.in_(locked)).with_for_update())
        result: list[list[str]] = []
        worker = threading.Thread(target=lambda: result.append(
            [c.connection_id for c in connections.claim_due_syncs(pg_store, 10, LEASE)]))
        worker.start()
        worker.join(60)  # only a guard: without SKIP LOCKED the claim would wait for the holder
        assert result, "the claim waited for the rows another claim holds"
        assert sorted(result[0]) == sorted(set(ids) - set(locked))
    finally:
        held.rollback()
        holder.close()
    assert sorted(c.connection_id for c in connections.claim_due_syncs(pg_store, 10, LEASE)) == locked


def test_a_claims_sync_holds_the_lease_and_a_stale_claim_does_not_run(
    store: Store, expert: AvailabilitySettings, calendar_url: str,
) -> None:
    connection_id = connect(store, calendar_url)
    (first,) = connections.claim_due_syncs(store, 1, LEASE)
    # The first claim's lease ran out unused (its message was lost): a second claim takes over.
    (second,) = connections.claim_due_syncs(store, 1, LEASE, now=utcnow() + LEASE + timedelta(seconds=1))
    assert second.lease_until != first.lease_until
    settings = Settings()
    assert wiring.sync_connection(store, connection_id, settings, lease_token=first.lease_until).status == "locked"
    assert wiring.sync_connection(store, connection_id, settings, lease_token=second.lease_until).status == "active"
    row = _row(store, connection_id)
    assert row["sync_lock_until"] is None and row["sync_failures"] == 0
    assert utcnow() + timedelta(seconds=230) < row["next_sync_at"] <= utcnow() + timedelta(seconds=300)


def test_jitter_spreads_next_sync_at(store: Store, expert: AvailabilitySettings, calendar_url: str) -> None:
    ids = _many(store, calendar_url, 30)
    schedule = Settings().worker.sync_schedule()
    now = utcnow()
    for connection_id in ids:  # as a sync does: take the lease (it clears the request), then finish it well
        assert sync_runs.start_sync(store, connection_id, LEASE, now=now) is not None
        sync_runs.finish_sync(store, connection_id, SyncEnd(status=ConnectionStatus.ACTIVE), schedule, now=now)
    due = sorted(_row(store, i)["next_sync_at"] for i in ids)
    assert all(now + timedelta(seconds=240) <= d <= now + timedelta(seconds=300) for d in due)
    assert len(set(due)) == 30 and due[-1] - due[0] > timedelta(seconds=20)  # spread, not one instant


def test_schedule_intervals_and_backoff() -> None:
    schedule = SyncSchedule(poll_seconds=300, backstop_seconds=21600, jitter=0.2, retry_base_seconds=60,
                            retry_max_seconds=3600)
    now = datetime(2030, 1, 1, tzinfo=utcnow().tzinfo)
    assert schedule.after_success("caldav", now, rand=lambda: 0.0) == now + timedelta(seconds=300)
    assert schedule.after_success("ics", now, rand=lambda: 1.0) == now + timedelta(seconds=240)
    assert schedule.after_success("google", now, rand=lambda: 0.0) == now + timedelta(hours=6)
    assert [schedule.backoff_seconds(n, rand=lambda: 1.0) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]
    assert schedule.backoff_seconds(1, rand=lambda: 0.0) == 30


def test_backoff_grows_after_errors_and_resets_on_success(
    store: Store, expert: AvailabilitySettings, proxy: FaultProxy, calendar_url: str,
) -> None:
    connection_id = connect(store, calendar_url)
    settings = Settings()
    waits = []
    for failures in (1, 2, 3):
        proxy.faults.append(Fault("REPORT", 503))
        proxy.faults.append(Fault("PROPFIND", 503))
        before = utcnow()
        with pytest.raises(TransientError):
            wiring.sync_connection(store, connection_id, settings)
        proxy.faults.clear()
        row = _row(store, connection_id)
        assert row["sync_failures"] == failures and row["status"] == "error"
        wait = (row["next_sync_at"] - before).total_seconds()
        ceiling = 60 * 2 ** (failures - 1)
        assert ceiling / 2 - 1 <= wait <= ceiling + 1
        waits.append(wait)
    assert waits[0] < waits[2]
    assert connection_id not in connections.due_connections(store)  # backing off
    assert wiring.sync_connection(store, connection_id, settings).status == "active"
    row = _row(store, connection_id)
    assert row["sync_failures"] == 0 and row["status"] == "active"
    assert row["next_sync_at"] > utcnow() + timedelta(seconds=230)


def test_reauth_required_is_not_due(store: Store, expert: AvailabilitySettings, calendar_url: str) -> None:
    connection_id = connect(store, calendar_url)
    connections.set_status(store, connection_id, "reauth_required", "401")
    assert _row(store, connection_id)["next_sync_at"] is None
    assert connections.claim_due_syncs(store, 10, LEASE, now=utcnow() + timedelta(days=30)) == []


def test_a_sync_past_its_budget_stops_after_the_calendar_and_resumes(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = [direct.make_calendar(f"budget-{i}-{uuid.uuid4().hex[:10]}") for i in range(3)]  # unique per run
    urls = [proxy.url.rstrip("/") + p for p in paths]
    for i, path in enumerate(paths):
        direct.put(path + f"e{i}.ics", event_text(f"e{i}", day(1 + i, 13), day(1 + i, 14)))
    connection_id = connect(store, urls[0])
    connections.update_config(store, connection_id, {"busyCalendars": urls})
    monkeypatch.setenv("CALBOOK_WORKER_SYNC_BUDGET_SECONDS", "0")  # every sync is over budget at once
    settings = Settings()

    outcome = wiring.sync_connection(store, connection_id, settings)
    assert (outcome.status, outcome.calendars) == ("partial", 1)
    row = _row(store, connection_id)
    assert row["sync_resume_from"] == 1 and row["next_sync_at"] <= utcnow()  # due again at once
    assert row["sync_lock_until"] is None and row["last_synced_at"] is None  # not a whole sync yet
    assert spans(store, connection_id) == [(day(1, 13), day(1, 14))]  # the first calendar is saved

    assert wiring.sync_connection(store, connection_id, settings).status == "partial"
    assert _row(store, connection_id)["sync_resume_from"] == 2
    outcome = wiring.sync_connection(store, connection_id, settings)
    assert (outcome.status, outcome.calendars) == ("active", 1)  # the last calendar: done
    row = _row(store, connection_id)
    assert row["sync_resume_from"] is None and row["last_synced_at"] is not None
    assert row["next_sync_at"] > utcnow() + timedelta(seconds=230)
    assert spans(store, connection_id) == [(day(1 + i, 13), day(1 + i, 14)) for i in range(3)]


def test_a_request_during_a_sync_makes_it_due_again_at_once(
    store: Store, expert: AvailabilitySettings, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_url: str,
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    inside, release = threading.Event(), threading.Event()

    def hold(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        inside.set()
        release.wait(30)
        return body

    proxy.response_hook = hold
    results: list[str] = []
    sync = threading.Thread(target=lambda: results.append(
        wiring.sync_connection(store, connection_id, Settings()).status))
    sync.start()
    try:
        assert inside.wait(30)
        assert connections.request_sync(store, EXPERT, connection_id) is True  # a notification arrives
    finally:
        release.set()
        proxy.response_hook = None
        sync.join(60)
    assert results == ["active"]
    assert _row(store, connection_id)["next_sync_at"] <= utcnow()
    assert connection_id in connections.due_connections(store)


def test_a_claim_whose_message_was_not_sent_is_given_back(store: Store, calendar_url: str) -> None:
    connection_id = connect(store, calendar_url)
    (claim,) = connections.claim_due_syncs(store, 1, LEASE)
    connections.give_back_claim(store, claim)
    assert [c.connection_id for c in connections.claim_due_syncs(store, 1, LEASE)] == [connection_id]


def test_new_connections_are_due_at_once_and_disconnected_ones_never(store: Store, calendar_url: str) -> None:
    connection_id = connect(store, calendar_url)
    assert _row(store, connection_id)["next_sync_at"] <= utcnow()
    connections.disconnect(store, EXPERT, connection_id)
    assert _row(store, connection_id)["next_sync_at"] is None
    with store.write() as conn:  # even with a due time left behind, the status keeps it out
        conn.execute(update(cc).where(cc.c.id == connection_id).values(next_sync_at=utcnow()))
        conn.execute(text("SELECT 1"))
    assert connections.claim_due_syncs(store, 10, LEASE) == []


def test_a_sync_its_rate_limit_stops_waits_for_its_turn_without_failing(
    store: Store, expert: AvailabilitySettings, calendar_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/rate-limits.md: "not now" from calbook's own limiter is no error and no backoff."""
    connection_id = connect(store, calendar_url)
    status_before = _row(store, connection_id)["status"]
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_STORE", "memory")
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_KEY_PREFIX", f"test-{utcnow().timestamp()}:")
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_CALDAV_HOST_PER_SECOND", "0.01")  # a turn every 100 s
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_CALDAV_HOST_BURST", "1")
    monkeypatch.setenv("CALBOOK_RATE_LIMIT_MAX_WAIT_SECONDS", "0")
    before = utcnow()
    outcome = wiring.sync_connection(store, connection_id, Settings())
    assert outcome.status == "rate_limited"
    row = _row(store, connection_id)
    assert row["status"] == status_before and row["sync_failures"] == 0 and row["last_error"] is None
    assert row["next_sync_at"] >= before + timedelta(seconds=60)  # its turn, not the failure backoff's 30-60 s
    assert row["sync_lock_until"] is None
