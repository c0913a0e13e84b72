"""Browser tests: Selenium drives Debian's Chromium (``/usr/bin/chromium`` through ``chromedriver``,
both Debian packages, nothing downloaded) against a real ``calbook serve`` (uvicorn, the embedded
worker and beat) on a free port, on SQLite and on PostgreSQL.

Under ``CI=true`` a missing Chromium or driver fails the run (``.ci/run`` installs both); elsewhere
the browser tests are skipped. Waits poll the page until a condition holds (no timed assertions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.db import truncate_all
from tests.support.processes import common_env, processes, wait_until_up
from tests.support.web import (  # noqa: F401
    CHROMEDRIVER,
    CHROMIUM,
    SCREENSHOTS,
    WAIT_SECONDS,
    Server,
    _need_browser,
    bookable_day,
    screenshot,
    sign_in,
    wait_for,
)
from tests.support.worker import free_port


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










