"""``/docs`` and ``/redoc`` work with no internet: every asset comes from the server itself.

A real ``calbook api`` serves the pages; the HTML must name no other host, every asset it names
must be served, and headless Chromium, with every host but 127.0.0.1 made unresolvable, must
render the operations (the page was blank offline when its scripts came from a CDN).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.db import IN_CI
from tests.support.processes import common_env, processes, wait_until_up
from tests.support.worker import free_port

pytestmark = pytest.mark.slow


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("docs")
    env = common_env(directory / "data")
    with processes(directory) as group:
        assert group.run(["migrate"], env).returncode == 0
        port = free_port()
        proc = group.start("api", ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, proc)
        yield base
        assert proc.stop() == 0


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_name_no_external_host_and_their_assets_are_served(api: str, page: str) -> None:
    html = httpx.get(api + page, timeout=10)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    parser = _Links()
    parser.feed(html.text)
    links = parser.links + re.findall(r"url:\s*'([^']+)'", html.text)
    assert links, html.text
    for link in links:
        target = urlsplit(urljoin(api + page, link))
        assert target.hostname == "127.0.0.1", f"{page} loads {link} from another host"
        asset = httpx.get(target.geturl(), timeout=10)
        assert asset.status_code == 200 and asset.content, link
    for absolute in re.findall(r"https?://[^\s'\"<>]+", html.text):
        assert absolute.startswith(api), f"{page} names {absolute}"


@pytest.mark.parametrize(("page", "rendered"), [
    ("/docs", 'class="opblock-summary-path" data-path="/v1/bookings/{booking_id}/cancel"'),
    ("/redoc", "/v1/bookings/{booking_id}/cancel"),
])
def test_a_browser_renders_the_docs_with_the_internet_unreachable(
    api: str, page: str, rendered: str, tmp_path: Path,
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=20000", "--dump-dom", api + page],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert rendered in dom, dom[-2000:]
