"""CPU seconds used by a process and all its descendants, read from /proc (Linux).

A rate measured on a shared 2-core machine moves with whatever else runs; the CPU the server
spent per request does much less, so the load benchmarks print both.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # the fields after "(comm)"


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU of ``root`` and every live descendant (uvicorn's worker processes)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])  # ppid
        times[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    total = 0.0
    for pid, seconds in times.items():
        walk = pid
        while walk and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += seconds
    return total
