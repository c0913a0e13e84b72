"""``calbook demo`` as a newcomer runs it: a subprocess that must finish on its own, exit 0,
show the imported busy time in the slots and the pushed event read back from CalDAV."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_offline_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBOOK_")}
    done = subprocess.run([sys.executable, "-m", "config.cli", "demo"], cwd=tmp_path, env={
        **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    booked = re.search(r"confirmed: booking (\S+)\.", out)
    assert booked, out
    assert re.search(rf"UID +{re.escape(booked.group(1))}@calbook", out), out
    assert "Dentist" in out and "10:00 BUSY" in out and "11:00 free" in out, out
    assert re.search(r"4\. Sync: [1-9]\d* busy block", out), out
    folder = re.search(r"runs at (http://127\.0\.0\.1:\d+/)", out)
    assert folder, out
    assert "demo-password" not in out + done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory
