"""Settings for every calbook process, read from ``CALBOOK_*`` environment variables.

The embedded default needs nothing installed: a SQLite file and a kombu SQLAlchemy broker
on a second SQLite file, both under the data directory. Secrets that the embedded default
needs (JWT signing secret, credential encryption key) are generated once into that folder
when they are not given, so a fresh checkout runs with no configuration at all.

The data directory is ``CALBOOK_DATA_DIR`` or, without it, one absolute place per user
(``$XDG_DATA_HOME/calbook``, by default ``~/.local/share/calbook``), never a path relative
to where a command happens to run: ``calbook token`` from any directory signs with the
secret ``calbook serve`` uses (docs/operations.md#configuration).

``Settings.worker`` is the worker's section (``CALBOOK_WORKER_*``): intervals, leases, retry
policies, time limits. ``Settings.rate_limit`` (``CALBOOK_RATE_LIMIT_*``) holds the provider rate
limits every process keeps (docs/rate-limits.md). The defaults are the production values; tests shorten them through the
environment (for example a 0.2 s webhook backoff) instead of sleeping through real ones.

Only the composition roots (``api.app``/``api.deps``, ``worker.wiring``, the CLI) build a
``Settings``; everything below them is handed the settings, or the values it needs.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from booking_engine.sync_schedule import SyncSchedule
from config.retry import RetryPolicy

log = logging.getLogger("calbook.settings")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/calbook`` (``~/.local/share/calbook``): the same for every command of a user."""
    base = os.environ.get("XDG_DATA_HOME")
    if base and Path(base).is_absolute():
        return Path(base) / "calbook"
    try:
        return Path.home() / ".local" / "share" / "calbook"
    except RuntimeError:  # no home directory (a bare container user): next to where we run
        return Path("var").resolve()


class WorkerSection(BaseSettings):
    """The worker's section of ``Settings``, read from ``CALBOOK_WORKER_*``."""

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

    # -- calendar sync scheduling (docs/sync.md#scheduling, decision 0023) --
    # CalDAV and ICS are polled this often; push-fed Google and Microsoft only as a backstop.
    sync_poll_seconds: float = 300.0
    sync_backstop_seconds: float = 6 * 3600.0
    # The next due time is the interval shortened by up to this fraction, at random (spreads load).
    sync_jitter: float = 0.2
    # After failed syncs in a row: min(max, base * 2^(n-1)) with half jitter; reset on success.
    sync_retry_base_seconds: float = 60.0
    sync_retry_max_seconds: float = 3600.0
    # Fair share: a sync past this stops after its current calendar and is due again at once.
    sync_budget_seconds: float = 60.0
    # The dispatcher: beat's tick, how many it claims per statement, how many may be queued or running.
    sync_dispatch_interval_seconds: float = 30.0
    sync_dispatch_batch: int = 100
    sync_max_in_flight: int = 200
    # A claim is the sync lease: a lost message's connection is claimable again after this.
    sync_lease_seconds: float = 600.0
    # The queues ``calbook worker`` serves (comma-separated: sync, push, notify, default; or all)
    # and the thread pool size of a worker that serves only sync and push (docs/worker.md#queues).
    queues: str = "all"
    io_concurrency: int = 8
    # The CPU priority (nice increment) of a worker: -1 is automatic, 10 for a worker serving only
    # sync and push, 0 for one that sends e-mail and webhooks (docs/worker.md#cpu-priority).
    nice: int = Field(default=-1, ge=-1, le=19)

    # How often a worker's main process writes its heartbeat (``worker_heartbeats``).
    heartbeat_interval_seconds: float = 10.0

    # Where ``calbook worker`` serves its counters (it sets 9101 unless given; 0: off); docs/operations.md#metrics
    metrics_port: int = 0

    task_soft_time_limit: int = 120
    task_time_limit: int = 180

    def outbox_retry(self) -> RetryPolicy:
        """A failed outbox handler's next attempt (docs/worker.md#outbox)."""
        return RetryPolicy(base=self.outbox_retry_base_seconds, cap=self.outbox_retry_max_seconds,
                           jitter=0.5, max_attempts=self.outbox_max_attempts)

    def sync_schedule(self) -> SyncSchedule:
        """When a connection is due next (docs/sync.md#scheduling)."""
        return SyncSchedule(poll_seconds=self.sync_poll_seconds, backstop_seconds=self.sync_backstop_seconds,
                            jitter=self.sync_jitter, retry_base_seconds=self.sync_retry_base_seconds,
                            retry_max_seconds=self.sync_retry_max_seconds)

    def webhook_retry(self) -> RetryPolicy:
        """A failed webhook delivery's next attempt; it ends with the retry window, not a count."""
        return RetryPolicy(base=self.webhook_retry_base_seconds, cap=self.webhook_retry_max_seconds,
                           jitter=0.5, max_attempts=None)


class RateLimitSection(BaseSettings):
    """The provider rate limits' section of ``Settings``, read from ``CALBOOK_RATE_LIMIT_*``.

    The defaults are the providers' published quotas (docs/rate-limits.md, with the sources);
    lower them when other software shares the same Google project or Microsoft app, raise them
    when a quota increase was granted. ``store`` ``auto`` keeps the buckets in Redis when there
    is one (``redis_url``, else the broker's URL when the broker is Redis), in the database
    otherwise; ``off`` sends every request unlimited.
    """

    model_config = SettingsConfigDict(env_prefix="CALBOOK_RATE_LIMIT_", extra="ignore")

    store: Literal["auto", "redis", "database", "memory", "off"] = "auto"
    redis_url: str | None = None
    key_prefix: str = "calbook:rl:"

    # How long a request may wait for its turn before it fails as transient (the retry takes over).
    max_wait_seconds: float = Field(default=5.0, ge=0)
    person_max_wait_seconds: float = Field(default=1.0, ge=0)
    # A provider's 429 without Retry-After pauses its key this long; a longer Retry-After is capped.
    default_pause_seconds: float = Field(default=1.0, ge=0)
    max_pause_seconds: float = Field(default=300.0, ge=0)

    # Google Calendar API: per minute per project, and per minute per user per project.
    google_project_per_minute: int = Field(default=10_000, ge=1)
    google_user_per_minute: int = Field(default=600, ge=1)
    google_burst: int = Field(default=20, ge=1)

    # Microsoft Graph, Outlook service: per app and mailbox; and per app across all tenants.
    microsoft_mailbox_requests: int = Field(default=10_000, ge=1)
    microsoft_mailbox_period_seconds: float = Field(default=600.0, gt=0)
    microsoft_mailbox_concurrency: int = Field(default=4, ge=1)
    microsoft_app_per_10_seconds: int = Field(default=130_000, ge=1)
    microsoft_burst: int = Field(default=20, ge=1)
    # A concurrency lease a dead worker never released ends after this (longer than any request).
    lease_seconds: float = Field(default=120.0, gt=0)

    # No published limit: a polite default per server host (host and port).
    caldav_host_per_second: float = Field(default=20.0, gt=0)
    caldav_host_burst: int = Field(default=40, ge=1)
    ics_host_per_second: float = Field(default=10.0, gt=0)
    ics_host_burst: int = Field(default=20, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALBOOK_", extra="ignore")

    worker: WorkerSection = Field(default_factory=WorkerSection)
    rate_limit: RateLimitSection = Field(default_factory=RateLimitSection)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    broker_url: str | None = None
    result_backend: str | None = None

    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    encryption_key: str | None = Field(default=None, description="Fernet key for credentials at rest")

    smtp_url: str | None = None
    mail_from: str = "calbook <no-reply@calbook.local>"
    public_base_url: str = "http://127.0.0.1:8000"
    allow_private_urls: Annotated[bool | tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=False,
        description=(
            "Let users give URLs that resolve to loopback, private, link-local or other non-public addresses "
            "(webhook receivers, CalDAV servers, ICS feeds). Off by default (SSRF); self-hosters whose calendar "
            "server or webhook receiver lives on a private network set CALBOOK_ALLOW_PRIVATE_URLS=true, or "
            "better a comma-separated list of just the addresses or networks they need (10.1.2.3,fd00::/64)."
        ),
    )

    worker_heartbeat_max_age_seconds: float = Field(
        default=60.0,
        description=(
            "A worker whose heartbeat is older than this is taken for dead: /readyz answers 503 when no worker "
            "is fresher, and other workers take over the leases it held."
        ),
    )
    connect_max_concurrent_per_user: int = Field(
        default=2, description="Calendar connects (CalDAV, ICS) one user may have under way at once, per API process"
    )
    connect_retry_after_seconds: int = 15
    jwt_max_lifetime_seconds: int = Field(
        default=31 * 24 * 3600,
        description="Refuse bearer tokens that live longer than this (exp - iat, or exp - now without iat)",
    )

    web_session_seconds: int = Field(
        default=8 * 3600, description="How long a browser stays signed in to the pages after a sign-in link"
    )
    web_login_link_max_seconds: int = Field(
        default=15 * 60,
        description="A sign-in link's token may live at most this long (exp - iat): longer tokens are refused",
    )
    web_dev_login: bool = Field(
        default=False,
        description="Local development only: /login offers a form that signs in as any user id, with no token",
    )

    sync_horizon_days: int = 180
    request_max_body_bytes: int = 1_000_000
    answer_cache_entries: int = Field(
        default=4096, ge=0,
        description="ready slot and month answers kept per API process under their ETag (0: off; api/answer_cache.py)")
    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_token: str | None = Field(default=None, description="bearer token /metrics requires (unset: open)")
    access_log: bool = Field(default=True, description="log one line per API request (probes only at DEBUG)")

    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_api_root: str | None = None
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_freebusy_check: bool = False

    # -- Microsoft 365 / Outlook (connectors.microsoft; README "Calendars") --
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = None
    microsoft_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra sign-in host (sovereign clouds: https://login.microsoftonline.us, ...)",
    )
    microsoft_tenant: str = Field(
        default="common", description="'common' (work and personal accounts), 'organizations', or one tenant id"
    )
    microsoft_token_endpoint: str | None = Field(
        default=None, description="Token endpoint if not the one the authority's OpenID metadata names"
    )
    microsoft_graph_root: str = "https://graph.microsoft.com/v1.0"
    microsoft_subscription_minutes: int = Field(
        default=4230, ge=45, le=10080, description="Lifetime asked for change-notification subscriptions"
    )
    microsoft_freebusy_check: bool = False

    @field_validator("allow_private_urls", mode="before")
    @classmethod
    def _allowance(cls, value: object) -> object:
        """``true``/``false`` as usual, anything else a comma-separated list of networks."""
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("", "0", "false", "no", "off"):
                return False
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """``info`` means ``INFO``; anything else is refused as the user wrote it."""
        if isinstance(value, str) and value.strip().upper() in LogLevel.__args__:  # type: ignore[attr-defined]
            return value.strip().upper()
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("text", "json"):
            return value.strip().lower()
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'calbook.sqlite').resolve()}"

    def rate_limit_redis_url(self) -> str | None:
        """The Redis of the rate limiter: its own setting, else the broker's when the broker is Redis."""
        if self.rate_limit.redis_url:
            return self.rate_limit.redis_url
        broker = self.broker_url or ""
        return broker if broker.startswith(("redis://", "rediss://")) else None

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    def resolved_jwt_secret(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret
        return _local_secret(self.data_dir / "jwt-secret", lambda: secrets.token_urlsafe(48),
                             "a JWT signing secret", "CALBOOK_JWT_SECRET")

    def resolved_encryption_key(self) -> str:
        if self.encryption_key:
            return self.encryption_key
        from cryptography.fernet import Fernet

        return _local_secret(self.data_dir / "encryption-key", lambda: Fernet.generate_key().decode(),
                             "an encryption key", "CALBOOK_ENCRYPTION_KEY")


def _local_secret(path: Path, make: Callable[[], str], what: str, variable: str) -> str:
    """Read a generated secret, creating it with mode 0600 on first use (embedded default only).

    Several processes may start at once (two API workers, the worker): the secret is written
    to a private temporary file and linked into place, so the first one wins, whole, and the
    others read it. A new secret is announced, with where it lives: a token signed with it is
    only good for servers that use the same data directory.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        temporary.unlink()
    log.warning("generated %s in %s (set %s to provide your own)", what, path, variable)
    return value

