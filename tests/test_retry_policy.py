"""The one retry shape (``config.retry``, docs/worker.md#retries): delays, jitter, bounds, Celery options."""

from __future__ import annotations

import pytest

from config.retry import CALENDAR_TASK, GOOGLE_CALL, TASK, RetryPolicy
from config.settings import Settings


def test_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(base=10, cap=60, jitter=1.0)
    assert [policy.delay(n) for n in range(5)] == [10, 20, 40, 60, 60]


@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_jitter_stays_between_its_floor_and_the_ceiling(jitter: float) -> None:
    policy = RetryPolicy(base=8, cap=100, jitter=jitter)
    assert policy.delay(1, rand=lambda: 0.0) == 16 * jitter
    assert policy.delay(1, rand=lambda: 1.0) == 16


def test_attempts_count_the_first_one() -> None:
    assert not RetryPolicy(base=1, cap=1, max_attempts=3).gives_up_after(2)
    assert RetryPolicy(base=1, cap=1, max_attempts=3).gives_up_after(3)
    assert not RetryPolicy(base=1, cap=1).gives_up_after(10_000)  # bounded by a window instead


def test_celery_options_say_the_same_policy() -> None:
    assert TASK.celery_options() == {"retry_backoff": 2, "retry_backoff_max": 300, "retry_jitter": True,
                                     "max_retries": 5}
    assert CALENDAR_TASK.celery_options()["max_retries"] == 8
    with pytest.raises(ValueError):
        RetryPolicy(base=1, cap=10, jitter=0.5, max_attempts=3).celery_options()  # Celery has no half jitter
    with pytest.raises(ValueError):
        RetryPolicy(base=1, cap=10).celery_options()  # nor an unbounded count


def test_the_worker_policies_come_from_the_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_RETRY_BASE_SECONDS", "3")
    monkeypatch.setenv("CALBOOK_WORKER_OUTBOX_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("CALBOOK_WORKER_WEBHOOK_RETRY_MAX_SECONDS", "90")
    knobs = Settings().worker
    assert knobs.outbox_retry() == RetryPolicy(base=3, cap=3600, jitter=0.5, max_attempts=4)
    assert knobs.webhook_retry() == RetryPolicy(base=30, cap=90, jitter=0.5, max_attempts=None)
    assert GOOGLE_CALL.max_attempts == 5
