"""One ``Settings`` for every process: the worker's section keeps its ``CALBOOK_WORKER_*`` names."""

from __future__ import annotations

import pytest

from config.settings import Settings


def test_worker_section_reads_the_worker_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_BATCH", "7")
    monkeypatch.setenv("CALBOOK_WORKER_RETENTION_DAYS", "2.5")
    monkeypatch.setenv("CALBOOK_WORKER_TASK_TIME_LIMIT", "99")
    settings = Settings()
    assert (settings.worker.outbox_batch, settings.worker.retention_days, settings.worker.task_time_limit) == (
        7, 2.5, 99)


def test_the_heartbeat_age_stays_a_top_level_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS`` is the API's too (/readyz), so it is not in the section."""
    monkeypatch.setenv("CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS", "5")
    monkeypatch.setenv("CALBOOK_WORKER_HEARTBEAT_INTERVAL_SECONDS", "1")
    settings = Settings()
    assert settings.worker_heartbeat_max_age_seconds == 5
    assert settings.worker.heartbeat_interval_seconds == 1


def test_each_settings_reads_the_environment_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_BATCH", "3")
    before = Settings()
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_BATCH", "4")
    assert (before.worker.outbox_batch, Settings().worker.outbox_batch) == (3, 4)


def test_a_section_can_be_handed_in() -> None:
    assert Settings(worker={"outbox_batch": 9}).worker.outbox_batch == 9
