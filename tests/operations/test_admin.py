"""``calbook admin ...`` run as an operator runs it, against both databases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import busy_blocks, calendar_connections, outbox
from booking_engine.store.worker_tables import outbox_handler_runs, webhook_deliveries
from config.settings import Settings
from tests.support.api import EXPERT, USER, day_ahead
from tests.support.factories import publish
from tests.support.feed_server import serve_feed
from tests.support.processes import common_env, processes
from tests.support.worker import wait_until


def _book(store: Store, hour: int) -> str:
    from datetime import UTC, datetime

    from booking_engine.services import bookings

    day = day_ahead()
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return bookings.create_booking(store, USER, EXPERT, start, 60, "video_call").id


def test_prune_now_deletes_only_what_is_past_the_window(store: Store, db_url: str, tmp_path: Path) -> None:
    publish(store, EXPERT, now=utcnow())
    old, recent, pending = _book(store, 9), _book(store, 11), _book(store, 13)
    now = utcnow()
    with store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.aggregate_id == old).values(dispatched_at=now - timedelta(days=3)))
        conn.execute(update(outbox).where(outbox.c.aggregate_id == recent).values(dispatched_at=now))
    env = common_env(tmp_path / "data", CALBOOK_DATABASE_URL=db_url)
    with processes(tmp_path) as group:
        done = group.run(["admin", "prune", "--days", "2"], env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("pruned 1 dispatched outbox events, 0 finished webhook deliveries"), done.stdout
        assert _left(store) >= {recent, pending} and old not in _left(store)
        # --days 0 keeps nothing that is finished (0 is a window, not "the default").
        everything = group.run(["admin", "prune", "--days", "0"], env)
    assert everything.returncode == 0 and everything.stdout.startswith("pruned 1 "), everything.stdout
    assert _left(store) == {pending}


def _left(store: Store) -> set[str]:
    with store.read() as conn:
        return {r[0] for r in conn.execute(select(outbox.c.aggregate_id))}


def test_resend_makes_given_up_handlers_and_failed_deliveries_due_again(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:

    from worker import outbox as worker_outbox

    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_MAX_ATTEMPTS", "1")  # one failure and the handler is given up
    calls: list[str] = []
    healthy = False

    def flaky(_: Store, event: worker_outbox.OutboxEvent) -> None:
        calls.append(event.event_id)
        if not healthy:
            raise RuntimeError("SMTP said no")

    table = {"flaky": worker_outbox.OutboxHandler(("booking.created",), flaky)}
    publish(store, EXPERT, now=utcnow())
    booking_id = _book(store, 9)
    event_id = _event_id(store, booking_id)
    worker_outbox.drain(store, table, settings=Settings())
    assert _handler_status(store, event_id) == "failed" and _dispatched(store, event_id)
    _deliveries(store, event_id, [("sub-failed", "failed"), ("sub-ok", "succeeded"), ("sub-gone", "cancelled")])

    env = common_env(tmp_path / "data", CALBOOK_DATABASE_URL=db_url)
    with processes(tmp_path) as group:
        done = group.run(["admin", "resend", event_id], env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (f"event {event_id}: handlers due again: flaky; "
                                       "webhook deliveries due again: 1")
        assert _delivery_statuses(store, event_id) == {"sub-failed": "pending", "sub-ok": "succeeded",
                                                       "sub-gone": "cancelled"}
        assert not _dispatched(store, event_id)
        again = group.run(["admin", "resend", event_id, "--delivered"], env)
        assert again.returncode == 0 and again.stdout.strip().endswith("webhook deliveries due again: 1")
        missing = group.run(["admin", "resend", "no-such-event"], env)
    assert missing.returncode == 1 and "no outbox event no-such-event" in missing.stderr
    assert _delivery_statuses(store, event_id)["sub-ok"] == "pending"

    healthy = True
    worker_outbox.drain(store, table, settings=Settings())  # the real dispatch runs the handler again, once
    assert calls == [event_id, event_id]
    assert _handler_status(store, event_id) == "done" and _dispatched(store, event_id)


def _event_id(store: Store, booking_id: str) -> str:
    with store.read() as conn:
        return str(conn.execute(select(outbox.c.event_id).where(outbox.c.aggregate_id == booking_id,
                                                                outbox.c.event_type == "booking.created")).scalar_one())


def _dispatched(store: Store, event_id: str) -> bool:
    with store.read() as conn:
        dispatched_at = conn.execute(select(outbox.c.dispatched_at).where(outbox.c.event_id == event_id)).scalar_one()
    return dispatched_at is not None


def _handler_status(store: Store, event_id: str) -> str:
    runs = outbox_handler_runs.c
    with store.read() as conn:
        return str(conn.execute(select(runs.status).where(runs.event_id == event_id, runs.handler == "flaky"))
                   .scalar_one())


def _deliveries(store: Store, event_id: str, rows: list[tuple[str, str]]) -> None:
    old = utcnow() - timedelta(days=2)
    with store.write() as conn:
        for subscription_id, status in rows:
            conn.execute(webhook_deliveries.insert().values(
                event_id=event_id, event_type="booking.created", subscription_id=subscription_id,
                url="https://receiver.example/hook", body="{}", status=status, attempts=9, next_attempt_at=old,
                created_at=old))


def _delivery_statuses(store: Store, event_id: str) -> dict[str, str]:
    with store.read() as conn:
        rows = conn.execute(select(webhook_deliveries.c.subscription_id, webhook_deliveries.c.status)
                            .where(webhook_deliveries.c.event_id == event_id))
        return {r[0]: r[1] for r in rows}


def test_rotate_key_re_encrypts_every_secret_with_the_first_key(store: Store, db_url: str, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from booking_engine.store.tables import calendar_connections, oauth_states, users, webhook_subscriptions
    from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json

    old, new, stranger = (Fernet.generate_key().decode() for _ in range(3))
    now = utcnow()
    with store.write() as conn:
        conn.execute(users.insert().values(id=EXPERT, created_at=now, updated_at=now))
        for n, key in enumerate((old, old, new, stranger)):
            conn.execute(calendar_connections.insert().values(
                id=f"conn-{n}", expert_id=EXPERT, provider="caldav", status="active", config={},
                credentials=encrypt_json({"password": f"pw-{n}"}, key), created_at=now, updated_at=now))
        conn.execute(calendar_connections.insert().values(  # disconnected: credentials wiped
            id="conn-gone", expert_id=EXPERT, provider="caldav", status="disconnected", config={}, credentials=None,
            created_at=now, updated_at=now))
        conn.execute(webhook_subscriptions.insert().values(
            id="sub-1", owner_id=EXPERT, url="https://receiver.example/hook", event_types=[],
            secret=encrypt_json({"secret": "whsec"}, old), created_at=now))
        conn.execute(oauth_states.insert().values(
            state="st-1", expert_id=EXPERT, provider="google", secret=encrypt_json({"code_verifier": "v"}, old),
            created_at=now, expires_at=now + timedelta(minutes=10)))

    def readable_with(key: str) -> dict[str, dict[str, str] | None]:
        found: dict[str, dict[str, str] | None] = {}
        with store.read() as conn:
            rows = [*conn.execute(select(calendar_connections.c.id, calendar_connections.c.credentials)),
                    *conn.execute(select(webhook_subscriptions.c.id, webhook_subscriptions.c.secret)),
                    *conn.execute(select(oauth_states.c.state, oauth_states.c.secret))]
        for row_id, token in rows:
            if token is None:
                continue
            try:
                found[row_id] = decrypt_json(token, key)
            except CredentialsUnreadable:
                found[row_id] = None
        return found

    env = common_env(tmp_path / "data", CALBOOK_DATABASE_URL=db_url, CALBOOK_ENCRYPTION_KEY=f"{new},{old}")
    with processes(tmp_path) as group:
        first = group.run(["admin", "rotate-key"], env)
        assert first.returncode == 1, first.stdout + first.stderr  # conn-3 was made with a key nobody has
        assert "no configured key opens 1 in calendar_connections" in first.stderr
        assert first.stdout.startswith("re-encrypted 5 secrets with the first key (3 calendar_connections, "
                                       "1 webhook_subscriptions, 1 oauth_states)"), first.stdout
        after = readable_with(new)  # the new key alone opens everything the old one did
        assert after == {"conn-0": {"password": "pw-0"}, "conn-1": {"password": "pw-1"},
                         "conn-2": {"password": "pw-2"}, "conn-3": None, "sub-1": {"secret": "whsec"},
                         "st-1": {"code_verifier": "v"}}
        assert readable_with(stranger)["conn-3"] == {"password": "pw-3"}  # left as it was
        with store.write() as conn:
            conn.execute(calendar_connections.delete().where(calendar_connections.c.id == "conn-3"))
        again = group.run(["admin", "rotate-key"], {**env, "CALBOOK_ENCRYPTION_KEY": new})
    assert again.returncode == 0 and again.stdout.startswith("re-encrypted 5 secrets"), again.stdout + again.stderr


@pytest.fixture
def feed_url() -> Iterator[str]:
    """A tiny ICS feed on 127.0.0.1 with one event in three days."""
    start = (utcnow() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    stamp = "%Y%m%dT%H%M%SZ"
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:dentist@example.org\r\n"
            f"DTSTAMP:{start.strftime(stamp)}\r\nDTSTART:{start.strftime(stamp)}\r\n"
            f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    with serve_feed(body) as url:
        yield url


def test_list_connections_and_sync_one_through_a_real_worker(
    sqlite_url: str, tmp_path: Path, feed_url: str,
) -> None:
    from booking_engine.services import connections
    from connectors.secrets import encrypt_json

    store = Store.from_url(sqlite_url)
    env = common_env(tmp_path / "data", CALBOOK_DATABASE_URL=sqlite_url, CALBOOK_ALLOW_PRIVATE_URLS="true")
    created = connections.create_connection(
        store, EXPERT, EXPERT, "ics", account="127.0.0.1/team.ics", busy_calendars=[], destination_calendar=None,
        credentials=encrypt_json({"url": feed_url}, env["CALBOOK_ENCRYPTION_KEY"]), extra_config={"url": feed_url},
    )
    with store.write() as conn:  # as if the connect's own sync had run: nothing is waiting
        conn.execute(update(calendar_connections).where(calendar_connections.c.id == created.id)
                     .values(sync_requested_at=None))
    try:
        with processes(tmp_path) as group:
            listed = group.run(["admin", "connections"], env)
            assert listed.returncode == 0, listed.stderr
            row = next(line for line in listed.stdout.splitlines() if line.startswith(created.id))
            assert re.search(rf"{created.id}\s+{EXPERT}\s+ics\s+active\s+never", row), listed.stdout
            assert group.run(["admin", "connections", "--status", "error"], env).stdout.strip() == \
                "no calendar connections"
            missing = group.run(["admin", "sync", "no-such-connection"], env)
            assert missing.returncode == 1 and "no calendar connection no-such-connection" in missing.stderr

            queued = group.run(["admin", "sync", created.id], env)
            assert queued.returncode == 0 and queued.stdout.strip() == f"sync of {created.id} queued", queued
            worker = group.start("worker", ["worker", "--concurrency", "1", "--metrics-port", "0"], env)

            def synced() -> dict[str, Any] | None:
                shown = json.loads(group.run(["admin", "connections", "--json"], env).stdout)
                return next((c for c in shown if c["id"] == created.id and c["lastSyncedAt"]), None)

            state = wait_until(synced, 90, "the worker to run the sync the command queued")
            assert state["status"] == "active" and state["provider"] == "ics" and state["syncRequested"] is False
            assert worker.stop() == 0
        with store.read() as conn:
            assert conn.execute(select(busy_blocks.c.id).where(busy_blocks.c.connection_id == created.id)).first()
    finally:
        store.dispose()
