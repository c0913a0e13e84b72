"""Scale benchmark (issue 15): N experts' calendars kept fresh by one deployment, measured.

    .venv/bin/python -m bench.scale --quick                 # 200 experts, 60 s: a smoke run
    .venv/bin/python -m bench.scale --experts 10000 --seconds 600 --json out.json

What it does, everything on this machine and removed afterwards:
1. a fresh PostgreSQL database (``CALBOOK_BENCH_PG_URL``'s server), migrated with ``calbook
   migrate``; a Redis database of its own (``--redis-db``, refused unless empty);
2. fast loopback fakes: CalDAV (sync-collection, multiget) and ICS feeds (conditional GET)
   from ``bench/fakes``, the test suite's Google Calendar and Microsoft Graph fakes opened to
   many accounts; an SMTP sink and a webhook receiver;
3. seeds ``--experts`` experts, one connection each in the mix 50% Google, 20% Microsoft, 20%
   CalDAV, 10% ICS (``bench/scale/seed.py``), a share of them bookable;
4. starts ``calbook api``, the workers and ``calbook beat`` as docker-compose.yml does
   (``bench/scale/layout.py``); by default queues each connection's first sync as connecting
   does (``--cold kick``), or leaves everything to the scheduler (``--cold due``);
5. for ``--seconds``: changes in the fakes' calendars (``--changes`` per minute per thousand
   calendars; Google and Microsoft then notify calbook's webhook endpoints as the providers
   would), bookings that are confirmed and slot reads (``bench/scale/load.py``, another process);
6. reports the time until every connection synced once, staleness (age of the last successful
   sync) per provider, change-to-import latency, syncs per second, CPU per sync (from /proc),
   database transactions, scans and rows per sync (pg_stat_database: pg_stat_statements is not
   preloaded here) and the database backends' CPU, e-mail and webhook latency, slots p99, and
   the booking events in the fakes (exactly one per booking).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from api.auth import mint_token  # noqa: E402
from bench.fakes.caldav import FakeCalDAV  # noqa: E402
from bench.fakes.ics import FakeFeeds  # noqa: E402
from bench.fakes.providers import GoogleAccounts, MicrosoftAccounts  # noqa: E402
from bench.scale import layout as layout_mod  # noqa: E402
from bench.scale import load  # noqa: E402
from bench.scale.probes import (  # noqa: E402
    CpuMeter,
    backend_pids,
    db_counters,
    last_syncs,
    machine_cpu_seconds,
    percentile,
    redis_bytes,
    table_sizes,
    worker_syncs,
)
from bench.scale.seed import Expert, Fakes, publish, seed  # noqa: E402
from bench.scale.sinks import MailSink, WebhookSink  # noqa: E402
from booking_engine.store.db import Store  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.task_sender import CeleryTaskQueue  # noqa: E402
from tests.support.processes import Processes, clean_env  # noqa: E402

PG_ADMIN_URL = os.environ.get("CALBOOK_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-scale-" + uuid.uuid4().hex + uuid.uuid4().hex
PROVIDERS = ("google", "microsoft", "caldav", "ics")
POLLED = ("caldav", "ics")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Run:
    """Everything sampled while the benchmark runs (wall-clock seconds since the epoch)."""

    started: float = 0.0
    first_sync: dict[str, float] = field(default_factory=dict)
    """connection id -> when its first successful sync ended"""
    cold_done: float | None = None
    staleness: list[tuple[float, dict[str, list[float]]]] = field(default_factory=list)
    changes: list[tuple[str, str, float]] = field(default_factory=list)
    """(connection id, provider, when the fake changed (and notified, for push providers))"""
    change_latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    notify_statuses: Counter[str] = field(default_factory=Counter)
    marks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """named snapshots of the counters: 'start', 'cold', 'end'"""
    redis_peak_bytes: int = 0
    synced: int = 0
    """successful syncs seen in the database: changes of a connection's ``last_synced_at`` between samples
    (two syncs of one connection within one sampling interval count once: a lower bound)"""
    last: dict[str, float] = field(default_factory=dict)


def snapshot(meter: CpuMeter, engine: Any, database: str, ports: list[int], run: Run) -> dict[str, Any]:
    return {"at": time.time(), "cpu": meter.snapshot(), "machine_cpu": machine_cpu_seconds(), "synced": run.synced,
            "db": db_counters(engine, database), "syncs": {f"{p}/{r}": v for (p, r), v in worker_syncs(ports).items()}}


def sample_cpu(meter: CpuMeter, sessions: dict[str, list[int]], engine: Any, database: str) -> None:
    meter.sample_sessions(sessions)
    meter.sample_pids("postgres (this database's backends)", backend_pids(engine, database))
    meter.sample_comm("redis", "redis-server")


def sampler(run: Run, stop: threading.Event, engine: Any, database: str, meter: CpuMeter,
            sessions: dict[str, list[int]], ports: list[int], total: int, every: float, broker: Any) -> None:
    pending: dict[str, list[tuple[str, float]]] = defaultdict(list)
    seen_changes = 0
    next_staleness = 0.0
    while not stop.is_set():
        now = time.time()
        sample_cpu(meter, sessions, engine, database)
        rows = last_syncs(engine)
        synced = {cid: (provider, at.timestamp()) for cid, provider, at in rows if at is not None}
        for cid, (_, at) in synced.items():
            run.first_sync.setdefault(cid, at)
            if run.last.get(cid) != at:
                run.synced += 1
                run.last[cid] = at
        if run.cold_done is None and len(run.first_sync) >= total:
            run.cold_done = max(run.first_sync.values())
            run.marks["cold"] = snapshot(meter, engine, database, ports, run)
            log(f"every connection has synced once, {run.cold_done - run.started:.1f} s after the start")
        for cid, provider, at in run.changes[seen_changes:]:
            pending[cid].append((provider, at))
        seen_changes = len(run.changes)
        for cid in list(pending):
            last = synced.get(cid)
            if last is None:
                continue
            still = []
            for provider, at in pending[cid]:
                if last[1] > at:
                    run.change_latency[provider].append(last[1] - at)
                else:
                    still.append((provider, at))
            pending[cid] = still
            if not still:
                del pending[cid]
        if now >= next_staleness:
            ages: dict[str, list[float]] = defaultdict(list)
            for _, (provider, at) in synced.items():
                ages[provider].append(now - at)
            run.staleness.append((now, dict(ages)))
            run.redis_peak_bytes = max(run.redis_peak_bytes, redis_bytes(broker))
            next_staleness = now + 10
        stop.wait(every)


def mutator(run: Run, stop: threading.Event, fakes: Fakes, experts: list[Expert], per_minute: float,
            api: str) -> None:
    """Changes in the fakes' calendars at ``per_minute`` (Poisson, each calendar as likely), notifying
    calbook for push providers."""
    rng = random.Random(42)
    calendars = [(expert, calendar) for expert in experts for calendar in expert.calendars]
    if per_minute <= 0:
        return
    with httpx.Client(base_url=api, timeout=10) as http:
        while not stop.wait(rng.expovariate(per_minute / 60)):
            expert, calendar = rng.choice(calendars)
            changed_at = time.time()
            try:
                if expert.provider == "google":
                    fakes.google.change(calendar, rng)
                    status = fakes.google.notify(http, calendar)
                elif expert.provider == "microsoft":
                    fakes.microsoft.change(calendar, rng)
                    status = fakes.microsoft.notify(http, calendar)
                elif expert.provider == "caldav":
                    fakes.caldav.change(calendar, rng)
                    status = 0
                else:
                    fakes.feeds.change(expert.account, rng)
                    status = 0
            except httpx.HTTPError as exc:
                run.notify_statuses[f"{expert.provider} {type(exc).__name__}"] += 1
                continue
            if status is None:
                run.notify_statuses[f"{expert.provider} no channel yet"] += 1
            elif status:
                run.notify_statuses[f"{expert.provider} {status}"] += 1
            run.changes.append((expert.connection_id, expert.provider, changed_at))


def kick(broker: str, experts: list[Expert]) -> None:
    """Queue each connection's first sync as connecting does (Google and Microsoft: a sync and a watch)."""
    queue = CeleryTaskQueue(broker)
    for expert in experts:
        if expert.provider in ("google", "microsoft"):
            queue.sync_changed(expert.connection_id)
            queue.watch(expert.connection_id)
        else:
            queue.sync(expert.connection_id)
    log(f"queued {len(experts)} first syncs (as connecting does)")


def pct(values: list[float], q: float, scale: float = 1.0) -> float | None:
    found = percentile(values, q)
    return None if found is None else round(found * scale, 3)


def summarise_staleness(samples: list[tuple[float, dict[str, list[float]]]]) -> dict[str, dict[str, Any]]:
    """Per provider (and polled, all): p50/p95 pooled over the samples, max over them, and the worst sample's p95."""
    out: dict[str, dict[str, Any]] = {}
    groups = {**{p: (p,) for p in PROVIDERS}, "polled (caldav+ics)": POLLED, "all": PROVIDERS}
    for name, members in groups.items():
        pooled: list[float] = []
        worst_p95 = 0.0
        for _, ages in samples:
            values = [a for p in members for a in ages.get(p, [])]
            pooled.extend(values)
            if values:
                worst_p95 = max(worst_p95, percentile(values, 0.95) or 0.0)
        if pooled:
            out[name] = {"p50_s": pct(pooled, 0.5), "p95_s": pct(pooled, 0.95), "max_s": round(max(pooled), 1),
                         "worst_sample_p95_s": round(worst_p95, 1), "samples": len(samples)}
    return out


def window(marks: dict[str, dict[str, Any]], a: str, b: str, layout: layout_mod.Layout) -> dict[str, Any] | None:
    """Rates and costs between two snapshots."""
    if a not in marks or b not in marks:
        return None
    first, last = marks[a], marks[b]
    seconds = last["at"] - first["at"]
    if seconds <= 0:
        return None  # e.g. the first syncs finished only after the load ended: no steady window
    syncs_by = {k: last["syncs"].get(k, 0) - first["syncs"].get(k, 0) for k in last["syncs"]}
    counted = sum(v for k, v in syncs_by.items() if not k.endswith(("/locked", "/skipped")))
    # The worker metric counts the syncs of ``calbook.sync.connection``; the database sees every
    # successful one (push-triggered too): the larger is the better count.
    syncs = max(counted, last["synced"] - first["synced"])
    cpu = {k: round(last["cpu"].get(k, 0) - first["cpu"].get(k, 0), 2) for k in last["cpu"]}
    machine = last["machine_cpu"] - first["machine_cpu"]
    db = {k: last["db"][k] - first["db"][k] for k in last["db"]}
    return {
        "seconds": round(seconds, 1),
        "syncs": int(syncs), "syncs_seen_in_db": last["synced"] - first["synced"],
        "syncs_counted_by_worker": int(counted),
        "syncs_by_provider_result": {k: int(v) for k, v in syncs_by.items() if v},
        "syncs_per_second": round(syncs / seconds, 2) if seconds else None,
        "syncs_per_second_per_sync_worker_process": round(syncs / seconds / max(1, layout.sync_processes), 2)
        if seconds else None,
        "cpu_seconds": cpu, "machine_cpu_seconds": round(machine, 1),
        "worker_cpu_ms_per_sync": round(cpu.get("worker", 0) * 1000 / syncs, 2) if syncs else None,
        "db_backend_cpu_ms_per_sync": round(cpu.get("postgres (this database's backends)", 0) * 1000 / syncs, 2)
        if syncs else None,
        "db_backend_share_of_machine_cpu": round(cpu.get("postgres (this database's backends)", 0) / machine, 3)
        if machine else None,
        "calbook_share_of_machine_cpu": round(sum(cpu.get(k, 0) for k in ("api", "worker", "beat")) / machine, 3)
        if machine else None,
        "db_per_sync": {k: (round(v / syncs, 2) if syncs else None) for k, v in db.items()},
    }


def notification_latency(engine: Any, confirmed: list[tuple[str, str, float]], mails: MailSink,
                         hooks: WebhookSink, since: float | None = None) -> dict[str, Any]:
    sent = {booking_id: at for booking_id, _, at in confirmed if since is None or at >= since}
    with engine.connect() as conn:
        events = {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT event_id, aggregate_id, event_type FROM outbox WHERE event_type = 'booking.confirmed'"))}
    mail_latency = []
    for at, event_id, recipients in list(mails.arrivals):
        found = events.get(event_id)
        if found and found[0] in sent and any(r.startswith("booker") for r in recipients):
            mail_latency.append(at - sent[found[0]])
    hook_latency = [at - sent[booking] for at, kind, booking, _ in list(hooks.arrivals)
                    if kind == "booking.confirmed" and booking in sent]
    return {"bookings": len(sent),
            "email": {"n": len(mail_latency), "p50_s": pct(mail_latency, 0.5), "p95_s": pct(mail_latency, 0.95),
                      "max_s": pct(mail_latency, 1.0)},
            "webhook": {"n": len(hook_latency), "p50_s": pct(hook_latency, 0.5), "p95_s": pct(hook_latency, 0.95),
                        "max_s": pct(hook_latency, 1.0)}}


def push_check(fakes: Fakes, confirmed: list[tuple[str, str, float]], experts: dict[str, Expert]) -> dict[str, Any]:
    google, microsoft = fakes.google.pushes(), fakes.microsoft.pushes()
    counts: Counter[str] = Counter()
    for booking_id, expert_id, _ in confirmed:
        provider = experts[expert_id].provider
        if provider == "ics":
            continue  # a feed is read-only: nothing to push
        key = booking_id.replace("-", "")
        found = {"google": google[key], "microsoft": microsoft[key],
                 "caldav": len(fakes.caldav.pushes.get(f"{booking_id}@calbook", ()))}[provider]
        counts["expected"] += 1
        counts["exactly one" if found == 1 else ("lost" if found == 0 else "duplicated")] += 1
    return dict(counts)


def table(result: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    add = rows.append
    cfg = result["config"]
    add(("layout", cfg["layout"]))
    add(("experts / connections", f"{cfg['experts']} ({', '.join(f'{k} {v}' for k, v in cfg['mix'].items())})"))
    cold = result["cold"]
    add(("cold: all synced once", f"{cold['seconds']} s" if cold["seconds"] is not None
         else f"not reached: {cold['synced']} of {cfg['experts']} after {cfg['seconds']} s"))
    for name, values in cold.get("by_provider", {}).items():
        add((f"  {name}: last first sync", f"{values['last_s']} s, p50 {values['p50_s']} s ({values['n']})"))
    for name, values in result["staleness"].items():
        add((f"staleness {name}", f"p50 {values['p50_s']} s  p95 {values['p95_s']} s  max {values['max_s']} s"))
    for name, values in result["change_to_import"].items():
        add((f"change -> imported {name}", f"p50 {values['p50_s']} s  p95 {values['p95_s']} s  "
             f"n {values['n']} (unresolved {values['unresolved']})"))
    for label in ("cold_window", "steady_window", "whole_run"):
        w = result.get(label)
        if not w:
            continue
        add((f"{label}: syncs", f"{w['syncs']} in {w['seconds']} s = {w['syncs_per_second']}/s "
             f"({w['syncs_per_second_per_sync_worker_process']}/s per sync worker process)"))
        add((f"{label}: CPU per sync", f"worker {w['worker_cpu_ms_per_sync']} ms, "
             f"db backends {w['db_backend_cpu_ms_per_sync']} ms"))
        add((f"{label}: CPU shares", f"calbook {w['calbook_share_of_machine_cpu']}, db backends "
             f"{w['db_backend_share_of_machine_cpu']} of the machine ({w['machine_cpu_seconds']} cpu-s); "
             + ", ".join(f"{k} {v}" for k, v in w["cpu_seconds"].items())))
        d = w["db_per_sync"]
        add((f"{label}: db per sync", f"transactions {d.get('xact_commit')}, idx scans {d.get('idx_scan')}, "
             f"seq scans {d.get('seq_scan')}, rows returned {d.get('tup_returned')}, fetched {d.get('tup_fetched')}, "
             f"written {round(sum(d.get(k) or 0 for k in ('tup_inserted', 'tup_updated', 'tup_deleted')), 2)}"))
    for label in ("notifications", "notifications_steady"):
        n = result.get(label)
        if n:
            add((f"{label}: e-mail", f"p50 {n['email']['p50_s']} s  p95 {n['email']['p95_s']} s  "
                 f"max {n['email']['max_s']} s  ({n['email']['n']} of {n['bookings']})"))
            add((f"{label}: webhook", f"p50 {n['webhook']['p50_s']} s  p95 {n['webhook']['p95_s']} s  "
                 f"max {n['webhook']['max_s']} s  ({n['webhook']['n']} of {n['bookings']})"))
    s = result["slots"]
    add(("GET .../slots", f"{s['n']} reads, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, statuses {s['statuses']}"))
    add(("bookings", json.dumps(result["bookings"])))
    add(("pushes", json.dumps(result["pushes"])))
    add(("notifications sent by fakes", json.dumps(result["notify_statuses"])))
    sizes = result["sizes"]
    add(("sizes", f"database {sizes['postgres_bytes']['database'] / 1e6:.1f} MB ("
         + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes["postgres_bytes"].items() if k != "database")
         + f"); Redis peak {sizes['redis_peak_bytes_of_this_run'] / 1e6:.2f} MB"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--quick", action="store_true", help="200 experts for 60 s (a smoke run)")
    parser.add_argument("--events", type=int, default=20, help="events per fake calendar")
    parser.add_argument("--one-calendar", action="store_true",
                        help="one busy calendar per connection (default: one to three, 1.5 on average)")
    parser.add_argument("--changes", type=float, default=3.0, help="changes per minute per thousand calendars")
    parser.add_argument("--bookings-per-minute", type=float, default=30)
    parser.add_argument("--slots-per-second", type=float, default=10)
    parser.add_argument("--bookable", type=float, default=0.01, help="share of experts that take bookings")
    parser.add_argument("--bookers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4, help="the one worker's --concurrency (one queue)")
    parser.add_argument("--sync-concurrency", type=int, default=8,
                        help="the sync worker's --concurrency when the queues are separate")
    parser.add_argument("--sync-nice", type=int, default=None,
                        help="the sync worker's --nice (default: calbook's own, 10 for a sync-only worker)")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--queues", choices=["auto", "one"], default="auto",
                        help="auto: separate sync and push/notify workers when `calbook worker --queues` exists")
    parser.add_argument("--cold", choices=["kick", "due"], default="kick",
                        help="kick: queue each first sync as connecting does; due: leave it to the scheduler")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--drain", type=float, default=45, help="seconds after the load for pushes and mails to land")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    args = parser.parse_args()
    if args.quick:
        args.experts, args.seconds = min(args.experts, 200), min(args.seconds, 60)
        args.bookable = max(args.bookable, 0.1)
        args.changes = max(args.changes, 50.0)
    return execute(args)


def execute(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="calbook-scale-"))
    database = f"calbook_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base_url = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base_url}/{database}"
    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis_client = redis.Redis.from_url(broker)
    if redis_client.dbsize():
        raise SystemExit(f"Redis db {args.redis_db} is not empty: pick another with --redis-db")
    key = Fernet.generate_key().decode()
    fakes = Fakes(GoogleAccounts(args.events), MicrosoftAccounts(args.events), FakeCalDAV(args.events),
                  FakeFeeds(args.events))
    mails, hooks = MailSink(), WebhookSink()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    group = Processes(workdir)
    engine = None
    store: Store | None = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        for fake in (fakes.google, fakes.microsoft, fakes.caldav, fakes.feeds):
            fake.start()
        smtp_port = mails.start()
        hook_url = hooks.start()
        api_port = layout_mod.free_port()
        api = f"http://127.0.0.1:{api_port}"
        env = clean_env(**{
            "CALBOOK_DATABASE_URL": url, "CALBOOK_BROKER_URL": broker, "CALBOOK_DATA_DIR": str(workdir / "data"),
            "CALBOOK_JWT_SECRET": SECRET, "CALBOOK_ENCRYPTION_KEY": key,
            "CALBOOK_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "CALBOOK_PUBLIC_BASE_URL": api,
            # Every server of this run listens on 127.0.0.1, which the URL policy refuses by default.
            "CALBOOK_ALLOW_PRIVATE_URLS": "true", "CALBOOK_LOG_LEVEL": "WARNING", "CALBOOK_ACCESS_LOG": "false",
            **fakes.google.env(), **fakes.microsoft.env()})
        migrated = group.run(["migrate"], env)
        if migrated.returncode != 0:
            raise SystemExit(f"calbook migrate failed:\n{migrated.stderr}")
        store = Store.from_url(url)
        began = time.perf_counter()
        experts = seed(store, fakes, args.experts, args.bookable, key, one_calendar=args.one_calendar)
        bookers = publish(store, experts, args.bookers, hook_url, key)
        seeded_in = time.perf_counter() - began
        mix = Counter(e.provider for e in experts)
        log(f"seeded {len(experts)} experts ({dict(mix)}), {sum(len(e.calendars) for e in experts)} calendars, "
            f"in {seeded_in:.1f} s; database {database}")
        settings = Settings(jwt_secret=SECRET, data_dir=workdir / "data")
        engine = create_engine(url, pool_size=2)
        meter = CpuMeter()
        layout = layout_mod.start(group, env, api_port, args.api_workers, args.concurrency, args.queues,
                                  args.sync_concurrency, args.sync_nice)
        log(f"started: {layout.description}")
        run = Run(started=time.time())
        sample_cpu(meter, layout.sessions(), engine, database)
        run.marks["start"] = snapshot(meter, engine, database, layout.metrics_ports, run)
        threads = []
        if args.cold == "kick":
            # In a thread of its own: sending 10,000 messages takes minutes here, and the load starts now.
            threads.append(threading.Thread(target=kick, daemon=True, args=(broker, experts)))
        threads += [
            threading.Thread(target=sampler, daemon=True, args=(
                run, stop, engine, database, meter, layout.sessions(), layout.metrics_ports, len(experts), 2.0,
                redis_client)),
            threading.Thread(target=mutator, daemon=True, args=(
                run, stop, fakes, experts, args.changes * sum(len(e.calendars) for e in experts) / 1000, api)),
        ]
        for thread in threads:
            thread.start()
        bookable = [e for e in experts if e.bookable]
        plan = load.Plan(api_port, args.seconds, args.slots_per_second, args.bookings_per_minute,
                         [(e.id, mint_token(e.id, settings, ttl_seconds=86400)) for e in bookable],
                         [mint_token(b, settings, ttl_seconds=86400) for b in bookers])
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            outcome = pool.submit(load.run, plan).result(timeout=args.seconds + 300)
        log(f"load done: {sum(outcome.booking_statuses.values())} booking calls, {len(outcome.slot_latencies)} "
            f"slot reads; draining {args.drain:.0f} s")
        run.marks["end"] = snapshot(meter, engine, database, layout.metrics_ports, run)
        stop.wait(args.drain)
        stop.set()
        for thread in threads:
            thread.join(15)
        for proc in [layout.api, *layout.workers, *( [layout.beat] if layout.beat else [])]:
            if proc.popen.poll() is not None:
                log(f"{proc.name} exited with {proc.popen.returncode}:\n{layout_mod.log_tail(proc)}")
        result = report(args, run, layout, experts, mix, outcome, engine, mails, hooks, fakes, seeded_in)
        print(table(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))
            log(f"wrote {args.json}")
        errors = [line for proc in group.started for line in proc.lines() if "ERROR" in line or "Traceback" in line]
        if errors:
            log(f"{len(errors)} error lines in the logs (in {workdir}); the first few:\n" + "\n".join(errors[:8]))
        return 0
    finally:
        stop.set()
        group.kill_all()
        for closer in (mails.stop, hooks.stop, fakes.google.stop, fakes.microsoft.stop, fakes.caldav.stop,
                       fakes.feeds.stop):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - cleaning up, go on with the rest
                log(f"stop: {exc!r}")
        if store is not None:
            store.dispose()
        if engine is not None:
            engine.dispose()
        redis_client.flushdb()
        redis_client.close()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                             {"d": database})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept database {database} and logs in {workdir}")
        admin.dispose()


def report(args: argparse.Namespace, run: Run, layout: layout_mod.Layout, experts: list[Expert], mix: Counter[str],
           outcome: load.Outcome, engine: Any, mails: MailSink, hooks: WebhookSink, fakes: Fakes,
           seeded_in: float) -> dict[str, Any]:
    by_id = {e.id: e for e in experts}
    provider_of = {e.connection_id: e.provider for e in experts}
    firsts: dict[str, list[float]] = defaultdict(list)
    for cid, at in run.first_sync.items():
        firsts[provider_of.get(cid, "?")].append(at - run.started)
    cold_end = run.cold_done
    steady = [s for s in run.staleness if cold_end is not None and s[0] >= cold_end] or run.staleness[-3:]
    resolved = {p: len(v) for p, v in run.change_latency.items()}
    made = Counter(p for _, p, _ in run.changes)
    slots = sorted(outcome.slot_latencies)
    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "config": {"experts": len(experts), "calendars": sum(len(e.calendars) for e in experts),
                   "seconds": args.seconds, "mix": dict(mix), "events": args.events,
                   "changes_per_minute_per_1000": args.changes, "bookings_per_minute": args.bookings_per_minute,
                   "slots_per_second": args.slots_per_second, "cold": args.cold, "layout": layout.description,
                   "seeded_in_s": round(seeded_in, 1), "load_average_end": os.getloadavg()},
        "cold": {"seconds": round(cold_end - run.started, 1) if cold_end else None, "synced": len(run.first_sync),
                 "by_provider": {p: {"n": len(v), "p50_s": pct(v, 0.5), "last_s": round(max(v), 1)}
                                 for p, v in sorted(firsts.items())}},
        "staleness": summarise_staleness(steady),
        "staleness_phase": "after every connection synced once" if cold_end else "last 3 samples (cold not done)",
        "change_to_import": {p: {"n": len(v), "p50_s": pct(v, 0.5), "p95_s": pct(v, 0.95), "max_s": pct(v, 1.0),
                                 "unresolved": made[p] - resolved.get(p, 0)}
                             for p, v in sorted(run.change_latency.items())},
        "cold_window": window(run.marks, "start", "cold", layout),
        "steady_window": window(run.marks, "cold", "end", layout),
        "whole_run": window(run.marks, "start", "end", layout),
        "notifications": notification_latency(engine, outcome.confirmed, mails, hooks),
        "notifications_steady": notification_latency(engine, outcome.confirmed, mails, hooks, since=cold_end)
        if cold_end else None,
        "slots": {"n": len(slots), "p50_ms": pct(slots, 0.5, 1000), "p99_ms": pct(slots, 0.99, 1000),
                  "statuses": dict(outcome.slot_statuses)},
        "bookings": dict(outcome.booking_statuses),
        "pushes": push_check(fakes, outcome.confirmed, by_id),
        "notify_statuses": dict(run.notify_statuses),
        "sizes": {"postgres_bytes": table_sizes(engine, engine.url.database),
                  "redis_peak_bytes_of_this_run": run.redis_peak_bytes},
        "fake_requests": {"caldav": dict(fakes.caldav.counts), "ics": dict(fakes.feeds.counts),
                          "google_watched_calendars": fakes.google.watched(),
                          "microsoft_subscribed_calendars": fakes.microsoft.subscribed()},
    }
    return result


if __name__ == "__main__":
    raise SystemExit(main())
