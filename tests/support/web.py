"""Browser tests: Selenium drives Debian's Chromium (``/usr/bin/chromium`` through ``chromedriver``,
both Debian packages, nothing downloaded) against a real ``calbook serve`` (uvicorn, the embedded
worker and beat) on a free port, on SQLite and on PostgreSQL.

Under ``CI=true`` a missing Chromium or driver fails the run (``.ci/run`` installs both); elsewhere
the browser tests are skipped. Waits poll the page until a condition holds (no timed assertions).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from booking_engine.clock import utcnow
from tests.support.api import token
from tests.support.db import IN_CI
from tests.support.processes import Proc

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT_SECONDS = 60


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        if IN_CI:
            pytest.fail(f"the browser tests need {', '.join(missing)} in CI (.ci/run installs chromium-driver)",
                        pytrace=False)
        pytest.skip(f"not installed: {', '.join(missing)}")


@dataclass
class Server:
    base: str
    proc: Proc
    database_url: str | None

    def api(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token(user)}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def publish(self, expert: str, name: str, *, timezone: str = "UTC", **fields: Any) -> None:
        """The expert publishes 09:00-17:00 every day at 120 USD/h (over the API, as the host app would)."""
        assert self.api("PUT", "/v1/me", expert, json={"displayName": name, "headline": f"{name} helps"}).is_success
        week = {d: {"isAvailable": True, "windows": [{"start": "09:00", "end": "17:00"}]}
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        body = {"timezone": timezone, "hourlyRateCents": 12000, "weeklySchedule": week, "minNoticeMinutes": 0,
                **fields}
        answer = self.api("PUT", f"/v1/experts/{expert}/availability", expert, json=body,
                          headers={"If-Match": '"0"'})
        assert answer.status_code == 200, answer.text






def sign_in(driver: Any, server: Server, user: str, ttl: int = 300) -> None:
    """Open the sign-in link as the host app would hand it out, and land on the experts page."""
    driver.get(f"{server.base}/login?token={token(user, ttl=ttl)}")
    wait_for(driver, lambda d: d.current_url.endswith("/experts"), "the experts page after sign-in")


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition(driver)
        except Exception:  # noqa: BLE001 - the page is still changing under us
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; page: {driver.current_url}\n"
                                 f"{driver.find_element('tag name', 'body').text[:2000]}")
        time.sleep(0.2)


def bookable_day(days: int = 3) -> date:
    return (utcnow() + timedelta(days=days)).date()


def screenshot(driver: Any, name: str) -> None:
    """Write docs/screenshots/NAME.png when CALBOOK_WRITE_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("CALBOOK_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


