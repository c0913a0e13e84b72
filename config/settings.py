"""Settings for every calbook process, read from ``CALBOOK_*`` environment variables.

The embedded default needs nothing installed: a SQLite file and a kombu SQLAlchemy broker
on a second SQLite file, both under ``CALBOOK_DATA_DIR``. Secrets that the embedded default
needs (JWT signing secret, credential encryption key) are generated once into that folder
when they are not given, so a fresh checkout runs with no configuration at all.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALBOOK_", extra="ignore")

    data_dir: Path = Path("var")
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

    sync_horizon_days: int = 180
    request_max_body_bytes: int = 1_000_000
    log_level: str = "INFO"

    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_api_root: str | None = None
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_freebusy_check: bool = False

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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'calbook.sqlite').resolve()}"

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    def resolved_jwt_secret(self) -> str:
        return self.jwt_secret or _local_secret(self.data_dir / "jwt-secret", lambda: secrets.token_urlsafe(48))

    def resolved_encryption_key(self) -> str:
        if self.encryption_key:
            return self.encryption_key
        from cryptography.fernet import Fernet

        return _local_secret(self.data_dir / "encryption-key", lambda: Fernet.generate_key().decode())


def _local_secret(path: Path, make: callable[[], str]) -> str:  # type: ignore[valid-type]
    """Read a generated secret, creating it with mode 0600 on first use (embedded default only)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Tests change the environment between cases; this drops the cached settings."""
    get_settings.cache_clear()
