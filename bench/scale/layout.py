"""calbook's processes as production runs them (docker-compose.yml): ``calbook api``, workers, ``calbook beat``.

Which worker layout: with a ``calbook worker --queues`` option (separate ``sync``, ``push``
and ``notify`` queues, issue 15) one worker serves sync, one push and one notifications and
the periodic jobs, as docker-compose.yml does, so a sync backlog cannot delay an e-mail;
without it (an older calbook), one worker serves the one queue. Each process is the installed
``calbook`` command in a session of its own (``tests.support.processes``), so its whole process
tree can be measured.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import CALBOOK, Proc, Processes, wait_until_up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_help(env: dict[str, str]) -> str:
    return subprocess.run([*CALBOOK, "worker", "--help"], env=env, capture_output=True, text=True, timeout=60).stdout


@dataclass
class Layout:
    api: Proc
    workers: list[Proc] = field(default_factory=list)
    beat: Proc | None = None
    metrics_ports: list[int] = field(default_factory=list)
    description: str = ""
    sync_processes: int = 0
    """worker processes that run syncs (pool processes or threads are counted by ``sync_slots``)"""
    sync_slots: int = 0

    def sessions(self) -> dict[str, list[int]]:
        out = {"api": [self.api.popen.pid], "worker": [w.popen.pid for w in self.workers]}
        if self.beat is not None:
            out["beat"] = [self.beat.popen.pid]
        return out


def start(group: Processes, env: dict[str, str], api_port: int, api_workers: int, concurrency: int,
          queues: str, sync_concurrency: int = 8, sync_nice: int | None = None) -> Layout:
    """Start the API, then the workers and beat; returns once the API answers. ``sync_nice``: the
    sync worker's ``--nice`` (None: calbook's default, 10 for a worker serving only sync)."""
    api = group.start("api", ["api", "--host", "127.0.0.1", "--port", str(api_port), "--workers", str(api_workers)],
                      env)
    wait_until_up(f"http://127.0.0.1:{api_port}", api, timeout=120)
    options = worker_help(env)
    layout = Layout(api)
    split = "--queues" in options and queues != "one"
    named = "--name" in options
    # Split, as docker-compose.yml runs it: a worker for calendar syncs (threads, the concurrency
    # given), one for calendar pushes (threads), one for e-mail, webhooks and the periodic jobs
    # (prefork), so neither a sync backlog nor a slow calendar push can hold up an e-mail.
    plans = ([("sync", "sync", sync_concurrency), ("push", "push", 4), ("notify", "notify,default", 2)] if split
             else [("worker", None, concurrency)])
    for name, serve, slots in plans:
        port = free_port()
        args = ["worker", "--concurrency", str(slots), "--metrics-port", str(port)]
        if serve is not None:
            args += ["--queues", serve]
        if serve == "sync" and sync_nice is not None and "--nice" in options:
            args += ["--nice", str(sync_nice)]
        if named:
            args += ["--name", f"bench-{name}"]
        layout.workers.append(group.start(name, args, env))
        layout.metrics_ports.append(port)
    layout.sync_processes = 1
    layout.sync_slots = plans[0][2]
    layout.beat = group.start("beat", ["beat"], env)
    nice = f" --nice {sync_nice}" if sync_nice is not None else ""
    layout.description = (
        f"api --workers {api_workers}; " + "; ".join(
            f"worker{' --queues ' + s if s else ''} --concurrency {c}{nice if s == 'sync' else ''}"
            for _, s, c in plans) + "; beat")
    return layout


def log_tail(proc: Proc, lines: int = 30) -> str:
    return "\n".join(proc.lines()[-lines:])


__all__ = ["Layout", "Path", "free_port", "log_tail", "start"]
