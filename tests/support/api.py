"""API test helpers: the parties, bearer tokens, request bodies, times, problem+json assertions."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.fernet import Fernet

from booking_engine.clock import utcnow
from config.settings import Settings

SECRET = "calbook-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


OTHER_SECRET = "another-secret-entirely-0123456789-abcdefghijklmnopqrstuvwxyz"


EXPERT = "expert-1"


USER = "user-1"


STRANGER = "stranger-1"


PROBLEM = "application/problem+json"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "jwt_secret": SECRET,
        "broker_url": f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        "encryption_key": Fernet.generate_key().decode(),
        # The tests' receivers, Radicale and fake servers listen on 127.0.0.1; tests/api/test_url_policy.py
        # passes False to check the secure default.
        "allow_private_urls": True,
    }
    values.update(overrides)
    return Settings(**values)


def token(user_id: str, secret: str = SECRET, ttl: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def auth(user_id: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id, **kwargs)}"}


def day_ahead(days: int = 1) -> date:
    return (utcnow() + timedelta(days=days)).date()


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is a problem document with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


def booking_body(day: date | None = None, hour: int = 10, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "expertId": EXPERT,
        "startTime": at(day or day_ahead(), hour),
        "durationMinutes": 60,
        "type": "video_call",
        "topic": "Tax questions",
    }
    body.update(overrides)
    return body
