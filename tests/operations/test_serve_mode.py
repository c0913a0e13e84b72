"""``calbook serve``, the embedded default (SQLite, embedded broker), as a newcomer and an operator meet it.

- The first run is quiet and says what to do next: where the API and its docs are, how to get
  a token, where the data directory is and which secrets it generated.
- ``calbook token`` run from another directory signs with the same secret: the server accepts it.
- The API and its worker log in one format, with calbook's own lines; JSON lines carry the ids
  as fields; ``CALBOOK_LOG_LEVEL=WARNING`` silences INFO; idle ticks stay off the log.
- SIGTERM is a requested shutdown: exit 0, and the worker goes with it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import (
    FAST_TICKS,
    Proc,
    Processes,
    clean_env,
    common_env,
    json_lines,
    processes,
    publish_and_book,
    wait_until_up,
)
from tests.support.worker import free_port, wait_until

pytestmark = pytest.mark.slow


def _serve(group: Processes, env: dict[str, str], cwd: Path | None = None) -> tuple[str, Proc]:
    port = free_port()
    proc = group.start("serve", ["serve", "--port", str(port)], env, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, proc)
    wait_until(lambda: _metric(base, "calbook_worker_tasks_total") > 0, 90, "the embedded worker to run a tick")
    return base, proc


def _metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _outbox_empty(base: str) -> bool:
    return _metric(base, "calbook_outbox_backlog") == 0 and _metric(base, "calbook_outbox_events_total") > 0


def test_first_run_finds_one_data_directory_from_anywhere(tmp_path: Path) -> None:
    home = tmp_path / "home"
    here, elsewhere = tmp_path / "checkout", tmp_path / "somewhere-else"
    for folder in (home, here, elsewhere):
        folder.mkdir()
    env = clean_env(HOME=str(home), **FAST_TICKS)
    env.pop("XDG_DATA_HOME", None)
    data_dir = home / ".local" / "share" / "calbook"
    with processes(tmp_path) as group:
        base, serve = _serve(group, env, cwd=here)
        first_run = serve.text()
        # What to do next, and nothing else at startup: no alembic, setuptools or Celery banner noise.
        assert re.search(rf"API at {re.escape(base)}\b.*docs at {re.escape(base)}/docs.*calbook token USER_ID",
                         first_run), first_run
        assert f"generated a JWT signing secret in {data_dir / 'jwt-secret'}" in first_run
        assert f"generated an encryption key in {data_dir / 'encryption-key'}" in first_run
        assert f"data_dir={data_dir}" in first_run
        for noise in ("alembic", "setup plugin", "Context impl", "setuptools", "[tasks]", "Uvicorn running"):
            assert noise not in first_run, noise
        assert (data_dir / "calbook.sqlite").exists() and not (here / "var").exists()

        token = group.run(["token", "user-1"], env, cwd=elsewhere)
        assert token.returncode == 0, token.stderr
        assert "generated" not in token.stderr  # the server's secret was found, not a new one made
        answer = httpx.get(f"{base}/v1/bookings", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
        assert answer.status_code == 200, answer.text
        assert not (elsewhere / "var").exists()
        assert serve.stop() == 0


def test_logs_in_one_format_quiet_when_idle_and_sigterm_exits_0(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        base, serve = _serve(group, common_env(tmp_path / "data"))
        booking = publish_and_book(base)
        wait_until(lambda: _outbox_empty(base), 60, "the embedded worker to dispatch the booking's events")
        log = serve.text()
        assert re.search(rf"INFO serve booking_engine\.services\.bookings: booking created booking_id={booking['id']}",
                         log), log[-3000:]
        drained = r"INFO worker worker\.tasks\.outbox: outbox drained .*dispatched=[1-9]"
        wait_until(lambda: re.search(drained, serve.text()), 30, "the worker's own line")
        record = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) (serve|worker) \S+: ")
        for line in serve.lines():
            assert record.match(line) or line.startswith((" ", "\t")), line  # or a record's continuation line

        # The worker's counters reach the API's /metrics: one directory for both under serve.
        # (The embedded broker polls once a second: the window lasts until 42 ticks, a default
        # idle minute's worth, have run, however long that takes here.)
        ticks_before = _metric(base, "calbook_worker_tasks_total")
        lines_before = len(serve.lines())
        wait_until(lambda: _metric(base, "calbook_worker_tasks_total") - ticks_before >= 42, 90, "42 idle ticks")
        quiet = serve.lines()[lines_before:]
        assert len(quiet) <= 3, quiet

        assert serve.stop() == 0, serve.text()[-3000:]  # (tests/test_serve.py: the worker stops with it)


def test_json_lines_carry_the_ids_as_fields(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        base, serve = _serve(group, common_env(tmp_path / "data", CALBOOK_LOG_FORMAT="json"))
        booking = publish_and_book(base)
        wait_until(lambda: _outbox_empty(base), 60, "the embedded worker to dispatch")
        entries = json_lines(serve.text())
        created = [e for e in entries if e["message"] == "booking created"]
        assert created and created[0]["booking_id"] == booking["id"] and created[0]["status"] == "pending"
        assert created[0]["process"] == "serve" and created[0]["level"] == "INFO"
        assert created[0]["logger"] == "booking_engine.services.bookings" and created[0]["time"].endswith("Z")
        access = [e for e in entries if e["logger"] == "calbook.access" and e.get("path") == "/v1/bookings"]
        assert access and access[0]["status"] == 201 and access[0]["method"] == "POST"
        assert access[0]["route"] == "/v1/bookings" and access[0]["duration_ms"] >= 0
        assert any(e["process"] == "worker" and e["logger"].startswith("celery") for e in entries)
        assert serve.stop() == 0


def test_log_level_warning_silences_info(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        base, serve = _serve(group, common_env(tmp_path / "data", CALBOOK_LOG_LEVEL="WARNING"))
        publish_and_book(base)
        wait_until(lambda: _outbox_empty(base), 60, "the embedded worker to dispatch")
        time.sleep(1.0)
        info = [line for line in serve.lines() if " INFO " in line or line.startswith("INFO")]
        assert not info, info
        assert serve.stop() == 0


def test_access_log_can_be_switched_off(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        base, serve = _serve(group, common_env(tmp_path / "data", CALBOOK_ACCESS_LOG="false"))
        booking = publish_and_book(base)
        wait_until(lambda: f"booking_id={booking['id']}" in serve.text(), 30, "the booking's log line")
        assert "calbook.access" not in serve.text()
        assert serve.stop() == 0
