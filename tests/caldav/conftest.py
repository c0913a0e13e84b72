"""Fixtures of the CalDAV suite: a calendar per test, its URL, a provider on it.

The servers, the fault proxy and the per-test account are ``tests/conftest.py``'s (``tests/sync``
uses them too). ``caldav_server`` is parametrised over ``SERVERS`` (Radicale, Cyrus, DAViCal, SabreDAV), each
started once per session, so every test that uses it - the whole pull, push and fault suite -
runs against each server. ``CALBOOK_TEST_CALDAV_SERVERS=radicale,cyrus`` narrows the list while
developing. A server that cannot start here is skipped on a developer machine and fails the run
under ``CI=true``.
"""


from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.caldav import CalDAVProvider
from tests.support.caldav import (
    LOCAL,
    OWNER,
    Direct,
)
from tests.support.caldav_servers import Account, CalDAVServer, FaultProxy


@pytest.fixture
def calendar_path(direct: Direct) -> str:
    return direct.make_calendar()


@pytest.fixture
def calendar_id(proxy: FaultProxy, calendar_path: str) -> str:
    return proxy.url.rstrip("/") + calendar_path


@pytest.fixture
def server_url(proxy: FaultProxy, caldav_server: CalDAVServer) -> str:
    """Where a user would point calbook: the server's root, through the proxy."""
    return proxy.url.rstrip("/") + caldav_server.root


@pytest.fixture
def provider(server_url: str, account: Account) -> Iterator[CalDAVProvider]:
    with CalDAVProvider(server_url, account.username, account.password, "Europe/Berlin", [OWNER],
                        timeout=10, url_policy=LOCAL) as made:
        yield made
