"""A worker's CPU priority (docs/worker.md#cpu-priority): ``calbook worker`` processes, really started.

A worker serving only sync and push lowers itself to nice 10, one that sends e-mail keeps its
priority, and ``--nice`` or ``CALBOOK_WORKER_NICE`` decides when given. The niceness is read from
the kernel (``getpriority``) of the running worker, on the embedded broker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import common_env, processes
from tests.support.worker import wait_until


def _niceness_of(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--queues", "sync"], {}, 10),
    (["--queues", "sync,push"], {}, 10),
    (["--queues", "notify,default"], {}, 0),
    (["--queues", "notify", "--nice", "5"], {}, 5),
    (["--queues", "sync"], {"CALBOOK_WORKER_NICE": "0"}, 0),
])
def test_the_worker_runs_at_the_priority_its_queues_call_for(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: int,
) -> None:
    base = _niceness_of(0)
    if base != 0:
        pytest.skip(f"this test run itself is at nice {base}")
    environment = common_env(tmp_path / "data", **env)
    with processes(tmp_path) as group:
        worker = group.start("worker", ["worker", *args, "--concurrency", "1", "--metrics-port", "0"], environment)
        line = wait_until(lambda: next((x for x in worker.lines() if "worker serves" in x), None), 60,
                          "the worker to say what it serves")
        assert f"at nice {expected}" in line, worker.text()[-2000:]
        assert _niceness_of(worker.popen.pid) == expected
        wait_until(lambda: any(x.rstrip().endswith("ready.") for x in worker.lines()), 60, "the worker to be ready")
        assert _niceness_of(worker.popen.pid) == expected  # Celery's start left it so
        assert worker.stop() == 0
