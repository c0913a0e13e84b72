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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from tests.api.conftest import SECRET, token
from tests.conftest import IN_CI, truncate_all
from tests.operations.processes import Proc, common_env, processes, wait_until_up
from tests.worker.conftest import free_port

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _need_browser()
    directory = tmp_path_factory.mktemp("web")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = {"CALBOOK_PUBLIC_BASE_URL": base, "CALBOOK_ALLOW_PRIVATE_URLS": "true"}
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("pg_url")
        truncate_all(request.getfixturevalue("pg_store"))
        extra["CALBOOK_DATABASE_URL"] = database_url
    # Made here: `calbook serve` on PostgreSQL with the secrets given never creates the data
    # directory, yet its embedded broker lives there (reported to the lead).
    (directory / "data").mkdir()
    env = common_env(directory / "data", **extra)
    with processes(directory) as group:
        proc = group.start("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)], env)
        wait_until_up(base, proc)
        yield Server(base, proc, database_url)
        proc.stop()


@pytest.fixture
def browsers() -> Iterator[Callable[..., Any]]:
    """Make headless Chromium windows (phone-sized with ``width=390``); all are closed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    made: list[Any] = []

    def make(width: int = 1280, height: int = 1000) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={width},{height}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.quit()


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


__all__ = ["SECRET", "Server", "Store", "bookable_day", "screenshot", "sign_in", "wait_for"]
