"""Worker-only knobs (``CALBOOK_WORKER_*``): intervals, leases, retry backoff, time limits.

Only the worker reads them, so they stay out of the API's ``config.settings``. The defaults
are the production values; tests shorten them through the environment (for example a 0.2 s
webhook backoff) instead of sleeping through real ones.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALBOOK_WORKER_", extra="ignore")

    outbox_interval_seconds: float = 2.0
    outbox_batch: int = 20
    outbox_lease_seconds: float = 60.0
    outbox_drain_seconds: float = 20.0
    outbox_retry_base_seconds: float = 10.0
    outbox_retry_max_seconds: float = 3600.0
    outbox_max_attempts: int = 30

    webhook_interval_seconds: float = 5.0
    webhook_batch: int = 20
    webhook_lease_seconds: float = 60.0
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 30.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_retry_window_hours: float = 24.0

    smtp_timeout_seconds: float = 15.0
    starting_interval_seconds: float = 60.0
    # Unpaid bookings are released this often after their hold ends (docs/lifecycle.md#payment-hold).
    payment_expiry_interval_seconds: float = 60.0

    retention_days: float = 30.0
    # A long sync logs its progress this often (docs/sync.md#sync-progress).
    sync_progress_log_seconds: float = 10.0

    # How often a worker's main process writes its heartbeat (``worker_heartbeats``).
    heartbeat_interval_seconds: float = 10.0

    # Where ``calbook worker`` serves its counters (it sets 9101 unless given; 0: off); docs/operations.md#metrics
    metrics_port: int = 0

    task_soft_time_limit: int = 120
    task_time_limit: int = 180


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
