"""SSRF through CalDAV (``docs/security.md#url-policy``): every hop checked, credentials kept home.

The tests' URL policy lets 127.0.0.1 (where the servers run) through and refuses the rest of
the local ranges; ``InternalService`` on 127.0.0.2 plays the internal address an attacker
aims at. Nothing may reach it - not a redirect, not a discovered href, not a rebinding DNS
answer - and no error may carry its status line. Run against every server, like the rest.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorError, PermanentError, TransientError
from connectors.caldav import CalDAVProvider
from connectors.url_policy import UnsafeURL
from tests.support.caldav import LOCAL, WINDOW_END, WINDOW_START, Direct, vevent
from tests.support.caldav_servers import Account, Fault, FaultProxy
from tests.support.caldav_servers.internal import InternalService, Tarpit, assert_no_echo


@pytest.fixture
def internal() -> Iterator[InternalService]:
    service = InternalService()
    yield service
    service.stop()


def no_echo(err: ConnectorError, resolved: str | None = None) -> None:
    """Nothing of the refused hop in the message: no status line, no body - and no address that
    only DNS knew (``resolved``): the message may name what the server said, not what it reached."""
    text = str(err)
    assert_no_echo(text)
    assert resolved is None or resolved not in text


def rewrite_href(prop: str, target: str) -> Any:
    """Point ``prop`` at ``target``; for the principal, also hide a calendar-home-set the server
    may offer up front (DAViCal does), so that calbook has to follow the principal."""
    pattern = re.compile(rf"({prop}>\s*<(?:\w+:)?href>)([^<]+)(</)".encode())
    home = re.compile(rb"<(\w+:)?calendar-home-set\b[^>]*?(/>|>.*?</(\w+:)?calendar-home-set>)", re.S)

    def hook(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if prop == "current-user-principal" and b"current-user-principal>" in body:
            body = home.sub(b"", body)
        return pattern.sub(lambda m: m.group(1) + target.encode() + m.group(3), body)

    return hook


def fake_dns(monkeypatch: pytest.MonkeyPatch, **names: str | list[str]) -> None:
    """Resolve the given test names (``dav_example_test`` for ``dav.example.test``) to the given
    addresses (a list is answered in turn, its last one from then on); everything else as usual."""
    real = socket.getaddrinfo
    table = {name.replace("_", "."): ([a] if isinstance(a, str) else list(a)) for name, a in names.items()}

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            answers = table[host]
            address = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_a_redirect_to_an_internal_address_is_refused_before_it_is_requested(
    provider: CalDAVProvider, proxy: FaultProxy, internal: InternalService
) -> None:
    proxy.faults.append(Fault("PROPFIND", 307, headers={"Location": internal.url + "dav/"}))
    with pytest.raises(PermanentError, match="another host") as refused:
        provider.list_calendars()
    assert internal.hits == []
    no_echo(refused.value)


def test_a_redirect_to_a_sibling_host_on_an_internal_address_is_refused_when_connecting(
    monkeypatch: pytest.MonkeyPatch, account: Account, proxy: FaultProxy, caldav_server: Any
) -> None:
    """A sibling host of the same site may be followed (iCloud's calendar homes live on one),
    but the URL policy still decides where the connection goes."""
    trap = InternalService(port=proxy.port)
    fake_dns(monkeypatch, dav_example_test="127.0.0.1", intranet_example_test="127.0.0.2")
    proxy.faults.append(Fault("PROPFIND", 307, headers={"Location": f"http://intranet.example.test:{proxy.port}/"}))
    try:
        url = f"http://dav.example.test:{proxy.port}{caldav_server.root}"
        with CalDAVProvider(url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
            with pytest.raises(UnsafeURL) as refused:
                provider.list_calendars()
        assert trap.hits == [] and "private or local network" in str(refused.value)
        no_echo(refused.value, resolved="127.0.0.2")
    finally:
        trap.stop()


def test_a_redirect_to_another_host_is_refused_and_gets_no_credentials(
    server_url: str, account: Account, proxy: FaultProxy
) -> None:
    """``localhost`` is allowed by the policy, but it is not the host the expert gave: calbook
    does not follow, so the credentials never go there."""
    elsewhere = FaultProxy(proxy.upstream_port)
    elsewhere.start()
    try:
        proxy.faults.append(Fault("PROPFIND", 308, headers={"Location": f"http://localhost:{elsewhere.port}/"}))
        with CalDAVProvider(server_url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
            with pytest.raises(PermanentError, match="another host"):
                provider.list_calendars()
        assert elsewhere.seen == []
    finally:
        elsewhere.stop()


@pytest.mark.parametrize("prop", ["current-user-principal", "calendar-home-set"])
def test_a_discovered_href_on_another_host_is_refused(
    server_url: str, account: Account, proxy: FaultProxy, internal: InternalService, prop: str
) -> None:
    proxy.response_hook = rewrite_href(prop, internal.url + "principal/")
    with CalDAVProvider(server_url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
        with pytest.raises(PermanentError) as refused:
            provider.list_calendars()
    assert internal.hits == [] and "another host" in str(refused.value)
    no_echo(refused.value)


def test_calendars_listed_on_another_host_are_left_out(
    provider: CalDAVProvider, proxy: FaultProxy, calendar_id: str, calendar_path: str, internal: InternalService
) -> None:
    def point_elsewhere(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        return body.replace(f">{calendar_path}<".encode(), f">{internal.url}cal/<".encode())

    assert calendar_id in [c.id for c in provider.list_calendars()]
    proxy.response_hook = point_elsewhere
    assert calendar_id not in [c.id for c in provider.list_calendars()]
    assert all(c.id.startswith(proxy.url) for c in provider.list_calendars())
    assert internal.hits == []


def test_redirects_on_the_same_host_are_followed_three_times_not_four(
    server_url: str, account: Account, proxy: FaultProxy
) -> None:
    base = server_url.rstrip("/")
    for n in range(1, 5):  # /hop1 -> /hop2 -> /hop3 -> /hop4 -> the real root
        nxt = f"{base}/hop{n + 1}/" if n < 4 else server_url
        proxy.faults.append(Fault("PROPFIND", 307, match=f"/hop{n}/", headers={"Location": nxt}))
    with CalDAVProvider(f"{base}/hop2/", account.username, account.password, "UTC", url_policy=LOCAL) as three:
        assert three.list_calendars() is not None
    with CalDAVProvider(f"{base}/hop1/", account.username, account.password, "UTC", url_policy=LOCAL) as four:
        with pytest.raises(PermanentError, match="more than 3 redirects"):
            four.list_calendars()


def test_the_verification_deadline_bounds_a_server_that_trickles() -> None:
    """One byte every 0.4 s never trips a 10 s read timeout; the deadline ends it all the same."""
    tarpit = Tarpit(pause=0.4)
    try:
        began = time.monotonic()
        with CalDAVProvider(tarpit.url, "alice", "pw", "UTC", url_policy=LOCAL, timeout=10, deadline=2) as provider:
            with pytest.raises(TransientError, match="no answer within 2 s"):
                provider.list_calendars()
        assert time.monotonic() - began < 3.5
    finally:
        tarpit.stop()


def test_a_rebinding_dns_answer_is_caught_when_connecting(
    monkeypatch: pytest.MonkeyPatch, account: Account, proxy: FaultProxy, caldav_server: Any
) -> None:
    """The name checks out as 127.0.0.1, then resolves to 127.0.0.2 when the connection is made:
    the connection goes to the address that was checked, or nowhere."""
    trap = InternalService(port=proxy.port)  # the same port on the internal address
    fake_dns(monkeypatch, dav_rebind_test=["127.0.0.1", "127.0.0.2"])
    try:
        url = f"http://dav.rebind.test:{proxy.port}{caldav_server.root}"
        LOCAL.check_url(url)  # what the API checks first: fine
        with CalDAVProvider(url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
            with pytest.raises(UnsafeURL):
                provider.list_calendars()
        assert trap.hits == [] and proxy.seen == []
    finally:
        trap.stop()


def test_sync_and_push_check_every_connection_they_make(
    account: Account, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str,
    internal: InternalService, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored calendar URL whose host now resolves to an internal address: the pull and the
    PUT with the booking's body are refused before anything is sent."""
    from datetime import UTC, datetime

    from connectors.base import BookingEvent

    direct.put(calendar_path + "a.ics", vevent("a", "20250301T100000Z", "20250301T110000Z"))
    fake_dns(monkeypatch, dav_moved_test="127.0.0.2")
    trap = InternalService(port=proxy.port)
    stored = calendar_id.replace("127.0.0.1", "dav.moved.test")
    event = BookingEvent("b-1", datetime(2025, 3, 10, 9, tzinfo=UTC), datetime(2025, 3, 10, 10, tzinfo=UTC),
                         "Call", "", 0)
    try:
        with CalDAVProvider(stored, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
            for call in (lambda: provider.pull(stored, None, WINDOW_START, WINDOW_END),
                         lambda: provider.put_event(stored, event, None),
                         lambda: provider.delete_event(stored, event.booking_id, None)):
                with pytest.raises(UnsafeURL) as refused:
                    call()
                no_echo(refused.value, resolved="127.0.0.2")
        assert trap.hits == [] and proxy.seen == []
    finally:
        trap.stop()


@pytest.mark.parametrize(
    ("base", "other", "allowed"),
    [
        ("https://caldav.icloud.com/", "https://p42-caldav.icloud.com:443/1234/calendars/", True),
        ("https://caldav.icloud.com/", "http://p42-caldav.icloud.com/", False),  # no downgrade
        ("https://caldav.icloud.com/", "https://p42-caldav.icloud.com:8443/", False),  # odd port
        ("https://caldav.icloud.com/", "https://icloud.com.evil.example/", False),
        ("https://caldav.icloud.com/", "https://evil-icloud.com/", False),
        ("https://dav.example.co.uk/", "https://cal.example.co.uk/", True),
        ("https://example.co.uk/", "https://evil.co.uk/", False),  # a public suffix has no siblings
        ("https://example.com/", "https://cal.example.com/", False),  # two labels: no parent to share
        ("http://dav.example.com:8080/", "https://dav.example.com/", True),  # upgrade, same host
        ("http://dav.example.com:8080/", "http://dav.example.com:9090/", False),
        ("http://127.0.0.1:5232/", "http://127.0.0.1:5232/x/", True),
        ("http://127.0.0.1:5232/", "http://localhost:5232/", False),
        ("http://10.0.0.1/", "http://10.0.0.2/", False),
    ],
)
def test_which_hosts_belong_to_the_account(base: str, other: str, allowed: bool) -> None:
    from connectors.caldav.http import Origin, same_site

    assert same_site(Origin.of(base), Origin.of(other)) is allowed
