"""What the benchmark reads while it runs: CPU of process trees (/proc), the database's counters,
the connections' last sync, and the workers' sync counters (their Prometheus endpoints)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, int, float] | None:
    """(comm, ppid, session, cpu seconds) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), int(fields[3]), (int(fields[11]) + int(fields[12])) / TICKS


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


@dataclass
class CpuMeter:
    """CPU seconds of named groups of processes; a process that exits keeps what it used."""

    seen: dict[str, dict[int, float]] = field(default_factory=dict)

    def sample_sessions(self, groups: dict[str, list[int]]) -> None:
        """``groups``: name -> session leader pids (each calbook process runs in a session of its own)."""
        sessions = {sid: name for name, sids in groups.items() for sid in sids}
        for pid in _all_pids():
            stat = _stat(pid)
            if stat is not None and stat[2] in sessions:
                self.seen.setdefault(sessions[stat[2]], {})[pid] = stat[3]

    def sample_pids(self, name: str, pids: list[int]) -> None:
        for pid in pids:
            stat = _stat(pid)
            if stat is not None:
                self.seen.setdefault(name, {})[pid] = stat[3]

    def sample_comm(self, name: str, comm: str) -> None:
        for pid in _all_pids():
            stat = _stat(pid)
            if stat is not None and stat[0] == comm:
                self.seen.setdefault(name, {})[pid] = stat[3]

    def total(self, name: str) -> float:
        return sum(self.seen.get(name, {}).values())

    def snapshot(self) -> dict[str, float]:
        return {name: self.total(name) for name in self.seen}


def machine_cpu_seconds() -> float:
    """All CPU time of the machine so far (user + nice + system + irq + softirq + steal), in seconds."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))
    return busy / TICKS


def backend_pids(engine: Engine, database: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database})
        return [r[0] for r in rows]


DB_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated",
               "tup_deleted", "blks_hit", "blks_read")


def db_counters(engine: Engine, database: str) -> dict[str, int]:
    """pg_stat_database for the run's database, and the index and sequential scans of its tables."""
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database WHERE datname = :d"),
                           {"d": database}).mappings().one()
        scans = conn.execute(text("SELECT coalesce(sum(seq_scan), 0), coalesce(sum(idx_scan), 0) "
                                  "FROM pg_stat_user_tables")).one()
    return {**{k: int(v) for k, v in row.items()}, "seq_scan": int(scans[0]), "idx_scan": int(scans[1])}


def last_syncs(engine: Engine) -> list[tuple[str, str, datetime | None]]:
    with engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(text(
            "SELECT id, provider, last_synced_at FROM calendar_connections"))]


SYNC_LINE = re.compile(r'^calbook_calendar_syncs_total\{([^}]*)\}\s+([0-9.e+]+)', re.M)
LABEL = re.compile(r'(\w+)="([^"]*)"')


def worker_syncs(ports: list[int]) -> dict[tuple[str, str], float]:
    """``calbook_calendar_syncs_total`` by (provider, result), summed over the workers' metrics endpoints."""
    totals: dict[tuple[str, str], float] = {}
    for port in ports:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for labels, value in SYNC_LINE.findall(body):
            named = dict(LABEL.findall(labels))
            key = (named.get("provider", "?"), named.get("result", "?"))
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def table_sizes(engine: Engine, database: str) -> dict[str, int]:
    """Bytes of the database and of its largest tables (indexes and TOAST included)."""
    with engine.connect() as conn:
        total = conn.execute(text("SELECT pg_database_size(:d)"), {"d": database}).scalar_one()
        rows = conn.execute(text(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "ORDER BY 2 DESC LIMIT 8")).all()
    return {"database": int(total), **{name: int(size) for name, size in rows}}


def redis_bytes(client: Any) -> int:
    """Bytes the broker's keys of this run's Redis database take (``MEMORY USAGE`` of each)."""
    return sum(int(client.memory_usage(key) or 0) for key in client.scan_iter(count=1000))
