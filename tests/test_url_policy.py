"""``connectors.url_policy.check_public_url``: only public http(s) hosts, unless private ones are allowed.

Nothing here connects anywhere: literal addresses and ``localhost`` resolve locally, and the
``.invalid`` top-level domain is reserved never to resolve (RFC 2606).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.url_policy import UnresolvableURL, UnsafeURL, check_public_url

NON_PUBLIC = [
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://10.0.0.5/hook",
    "https://172.16.0.1/",
    "http://192.168.1.1:8080/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::1]/",  # 6to4 around 127.0.0.1
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
    "http://127.1/",  # shorthand that resolves to 127.0.0.1
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://localhost:8000/",
    "http://LOCALHOST/",
]


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL) as refused:
        check_public_url(url, allow_private=False)
    assert not isinstance(refused.value, UnresolvableURL)
    assert "private or local network address" in str(refused.value)
    assert "CALBOOK_ALLOW_PRIVATE_URLS=true" in str(refused.value)
    assert isinstance(refused.value, ConnectorError)


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_allowed_when_private_urls_are_allowed(url: str) -> None:
    check_public_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://93.184.216.34:8443/hook?x=1",
                                 "https://[2606:2800:220:1:248:1893:25c8:1946]/"])
def test_public_addresses_pass(url: str) -> None:
    check_public_url(url, allow_private=False)  # resolves a literal: no traffic


def test_unresolvable_host_is_refused_with_its_own_message() -> None:
    with pytest.raises(UnresolvableURL, match="does not resolve") as refused:
        check_public_url("https://calbook-test.invalid/hook", allow_private=False)
    assert refused.value.host == "calbook-test.invalid"
    assert "private" not in str(refused.value)


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/", "file:///etc/passwd", "webcal://93.184.216.34/x.ics",
                                 "not a url", "http:///nohost", "http://[::1/", "http://93.184.216.34:99999/"])
def test_only_absolute_http_urls(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(UnsafeURL):
            check_public_url(url, allow_private=allow)


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_resolver(monkeypatch, "93.184.216.34", "10.1.2.3")
    with pytest.raises(UnsafeURL, match="private or local") as refused:
        check_public_url("https://hooks.example.com/x", allow_private=False)
    assert asked == ["hooks.example.com"]
    assert refused.value.address == "10.1.2.3"


def test_a_scoped_link_local_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, "2606:2800:220:1::1", "fe80::1%eth0")
    with pytest.raises(UnsafeURL, match="private or local"):
        check_public_url("https://hooks.example.com/x", allow_private=False)


def test_allowing_private_urls_resolves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_resolver(monkeypatch, "127.0.0.1")
    check_public_url("https://hooks.example.com/x", allow_private=True)
    assert asked == []


def test_messages_never_carry_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, "10.0.0.1")
    with pytest.raises(UnsafeURL) as refused:
        check_public_url("https://alice:hunter2@intranet.example/feed.ics?token=s3cret", allow_private=False)
    assert not any(secret in str(refused.value) for secret in ("hunter2", "s3cret", "alice", "feed.ics"))


def test_a_list_of_networks_lets_just_those_private_addresses_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CALBOOK_ALLOW_PRIVATE_URLS=10.1.2.3,fd00:1::/64``: the calendar server on the LAN, and no more."""
    from connectors.url_policy import URLPolicy

    policy = URLPolicy.of(["10.1.2.3", "fd00:1::/64"])
    check_public_url("http://10.1.2.3:5232/dav/", allow_private=policy)
    check_public_url("http://[fd00:1::7]/", allow_private=policy)
    check_public_url("https://93.184.216.34/", allow_private=policy)  # public ones still pass
    for refused in ("http://10.1.2.4/", "http://127.0.0.1/", "http://169.254.169.254/", "http://[fd00:2::1]/",
                    "http://[::ffff:10.1.2.4]/"):
        with pytest.raises(UnsafeURL):
            check_public_url(refused, allow_private=policy)
    _fake_resolver(monkeypatch, "10.1.2.3", "10.9.9.9")  # one allowed answer does not excuse another
    with pytest.raises(UnsafeURL) as mixed:
        check_public_url("https://dav.lan.example/", allow_private=policy)
    assert mixed.value.address == "10.9.9.9"


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("false", False), ("", False), ("1", True),
    ("10.1.2.3, fd00:1::/64", ("10.1.2.3/32", "fd00:1::/64")),
])
def test_the_setting_reads_a_bool_or_a_list_of_networks(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | tuple[str, ...]
) -> None:
    from config.settings import Settings

    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", value)
    got = Settings().allow_private_urls
    assert (got if isinstance(got, bool) else tuple(str(n) for n in got)) == expected


def test_a_setting_that_is_no_network_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from config.settings import Settings

    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "my-lan")
    with pytest.raises(ValidationError):
        Settings()
