"""``calbook status``: the operator's picture on the command line (docs/operations.md#health).

The same facts as ``/readyz`` and ``/metrics``, read from the same places: is the database
reachable and migrated, is the broker reachable, which workers were seen, how much waits in
the outbox, which deliveries failed, which calendar connections need the expert. The exit
status is 0 when calbook can do its work (database, broker, a worker), 1 otherwise, so the
command serves as a health check too. URLs are shown without their passwords.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url

from config.settings import Settings


@dataclass
class Check:
    ok: bool
    detail: str


@dataclass
class Status:
    database: Check
    broker: Check
    workers: Check
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.database.ok and self.broker.ok and self.workers.ok


def shown_url(url: str) -> str:
    """A database or broker URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses (a broker's): kombu masks it
        from kombu import Connection

        return str(Connection(url).as_uri())


def _database(settings: Settings) -> tuple[Check, Any]:
    from booking_engine.services.operations import snapshot
    from booking_engine.store.db import Store
    from booking_engine.store.migrate import current_revision, head_revision

    url = settings.resolved_database_url()
    try:
        revision, head = current_revision(url), head_revision()
        store = Store.from_url(url)
        try:
            state = snapshot(store)
        finally:
            store.dispose()
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, not migrated: all "not ok"
        return Check(False, f"{shown_url(url)}: unreachable ({type(exc).__name__})"), None
    if revision != head:
        return Check(False, f"{shown_url(url)}: at revision {revision or 'none'}, "
                            f"code expects {head}: run `calbook migrate`"), state
    return Check(True, f"{shown_url(url)} (revision {revision})"), state


def _broker(settings: Settings) -> Check:
    from kombu import Connection

    url = settings.resolved_broker_url()
    try:
        with Connection(url, connect_timeout=3) as broker:
            broker.ensure_connection(max_retries=1, timeout=3)
            shown = broker.as_uri()
    except Exception as exc:  # noqa: BLE001
        return Check(False, f"{shown_url(url)}: unreachable ({type(exc).__name__})")
    return Check(True, shown)


def _workers(state: Any, max_age: float) -> Check:
    """Workers by their heartbeat (docs/worker.md#heartbeat): fresh within the readiness limit."""
    if state is None:
        return Check(False, "unknown: the database is unreachable")
    fresh = state.workers_seen_within(max_age)
    if not fresh:
        last = state.heartbeat_age_seconds
        when = "never" if last is None else f"last {_age(last)} ago"
        return Check(False, f"none seen in the last {_age(max_age)} ({when}): e-mails, webhooks and "
                            "calendar writes wait in the outbox")
    names = ", ".join(f"{w.node} (pid {w.pid}, {_age((state.taken_at - w.last_seen_at).total_seconds())} ago)"
                      for w in fresh)
    return Check(True, f"{len(fresh)} seen: {names}")


def collect(settings: Settings) -> Status:
    database, state = _database(settings)
    status = Status(database, _broker(settings), _workers(state, settings.worker_heartbeat_max_age_seconds))
    if state is not None:
        status.counts = {
            "outbox_backlog": state.outbox_backlog,
            "outbox_failing": state.outbox_failing,
            "outbox_oldest_age_seconds": round(state.outbox_oldest_age_seconds, 1),
            "webhook_deliveries": dict(sorted(state.webhook_deliveries.items())),
            "emails": {s: n for (channel, s), n in sorted(state.notifications.items()) if channel == "email"},
            "connections": {f"{p}/{s}": n for (p, s), n in sorted(state.connections.items())},
            "connections_needing_reauth": state.connections_with_status("reauth_required"),
        }
    return status


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(status: Status, version: str) -> str:
    mark = {True: "ok", False: "FAIL"}
    lines = [f"calbook {version}"]
    for name in ("database", "broker", "workers"):
        check: Check = getattr(status, name)
        lines.append(f"{name:<11}{mark[check.ok]:<6}{check.detail}")
    c = status.counts
    if c:
        oldest = f", oldest {_age(c['outbox_oldest_age_seconds'])} old" if c["outbox_backlog"] else ""
        lines.append(f"{'outbox':<11}{'':<6}{c['outbox_backlog']} undispatched{oldest}, {c['outbox_failing']} failing")
        hooks = c["webhook_deliveries"]
        lines.append(f"{'webhooks':<11}{'':<6}{hooks.get('pending', 0)} pending, {hooks.get('failed', 0)} failed, "
                     f"{hooks.get('succeeded', 0)} delivered")
        mails = c["emails"]
        lines.append(f"{'e-mail':<11}{'':<6}{mails.get('sent', 0)} sent, {mails.get('refused', 0)} refused")
        connections = ", ".join(f"{n} {key}" for key, n in c["connections"].items()) or "none"
        lines.append(f"{'calendars':<11}{'':<6}{connections}; {c['connections_needing_reauth']} need reauthorisation")
    return "\n".join(lines)


def render_json(status: Status, version: str, now: datetime) -> str:
    document = {
        "version": version,
        "ok": status.ok,
        "at": now.isoformat(),
        "checks": {name: {"ok": getattr(status, name).ok, "detail": getattr(status, name).detail}
                   for name in ("database", "broker", "workers")},
        **status.counts,
    }
    return json.dumps(document, indent=2)
