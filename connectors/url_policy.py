"""Which user-given URLs the server may call: public http(s) hosts only, unless configured otherwise.

Users hand calbook URLs that the server then calls (webhook receivers, CalDAV servers, ICS
feeds). Without a check, a user could make the server call itself, its private network or a
cloud metadata endpoint (SSRF). ``check_public_url`` resolves the host with
``socket.getaddrinfo`` and refuses the URL unless *every* address it resolves to is public:
not loopback, private, link-local, multicast, reserved, unspecified or otherwise non-global,
including IPv4 addresses hidden in IPv6 forms (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo).

Self-hosters whose calendar server or webhook receiver lives on a private network set
``CALBOOK_ALLOW_PRIVATE_URLS=true`` (then only the scheme and host are checked, no DNS lookup),
or, better, name just the networks they need: ``CALBOOK_ALLOW_PRIVATE_URLS=10.1.2.3,fd00:1::/64``
lets those addresses through and still refuses the rest of the private and local ranges. The
callers pass the setting (``Allowance``: a bool or a tuple of networks) as ``allow_private``.

Errors: ``UnsafeURL`` (a ``PermanentError``: retrying cannot help) for a URL that may not be called, and its subclass
``UnresolvableURL`` when the host does not resolve (which may be temporary). Their messages
name the host at most, never the whole URL (it may carry credentials or a private token).

``check_public_url`` happens before a request, and an ordinary HTTP client resolves the name
again when it connects, which leaves DNS rebinding within that gap. ``URLPolicy.resolve`` is
the other half: a network layer that connects only to the addresses it returns (the CalDAV
client's, ``connectors.pinned_network``) closes the gap.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from connectors.base import PermanentError

ALLOWED_SCHEMES = ("http", "https")
PRIVATE_HINT = "set CALBOOK_ALLOW_PRIVATE_URLS=true to allow"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: What ``CALBOOK_ALLOW_PRIVATE_URLS`` says: everything (``True``), nothing (``False``) or these networks.
Allowance = bool | tuple[IPNetwork, ...]


class UnsafeURL(PermanentError):
    """The URL may not be called: not http(s), no host, or a host on a private or local network."""

    def __init__(self, message: str, host: str | None = None, address: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.address = address


class UnresolvableURL(UnsafeURL):
    """The URL's host does not resolve (now), so where it points cannot be checked."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses carried inside an IPv6 one (mapped, 6to4, Teredo server and client)."""
    embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    return [a for a in embedded if a is not None]


def is_public_address(address: IPAddress) -> bool:
    """True when ``address`` is a public unicast address, and so is any IPv4 address inside it."""
    if (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or not address.is_global
    ):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return all(is_public_address(inner) for inner in _embedded_ipv4(address))
    return True


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError; UnicodeError: bad IDNA label
        raise UnresolvableURL(f"url host {host} does not resolve", host=host) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 link-local answer may carry its zone ("fe80::1%eth0"); the zone does not change the verdict.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableURL(f"url host {host} does not resolve", host=host)
    return addresses


@dataclass(frozen=True, slots=True)
class URLPolicy:
    """Which addresses calbook may call: public ones, plus ``allowed`` networks, or all (``allow_private``)."""

    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, allowance: Allowance | URLPolicy | Iterable[str | IPNetwork]) -> URLPolicy:
        if isinstance(allowance, URLPolicy):
            return allowance
        if isinstance(allowance, bool):
            return cls(allow_private=allowance)
        return cls(allowed=tuple(ipaddress.ip_network(n) if isinstance(n, str) else n for n in allowance))

    def permits(self, address: IPAddress) -> bool:
        if self.allow_private or is_public_address(address):
            return True
        return any(address.version == net.version and address in net for net in self.allowed)

    def check_url(self, url: str) -> tuple[str, int]:
        """``(host, port)`` of ``url`` if it may be called; ``UnsafeURL`` otherwise (see ``check_public_url``)."""
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
            port = parts.port
        except ValueError as exc:  # an unparsable netloc or port
            raise UnsafeURL("url is not a valid http(s) URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES or not host:
            raise UnsafeURL("url must be an absolute http or https URL")
        port = port or (443 if scheme == "https" else 80)
        if not self.allow_private:
            self.resolve(host, port)
        return host, port

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses ``host`` resolves to, if every one may be called; ``UnsafeURL`` otherwise.

        Connecting to exactly these (and nothing resolved later) is what pins a request to the
        checked address.
        """
        addresses = _resolve(host, port)
        for address in addresses:
            if not self.permits(address):
                raise UnsafeURL(
                    f"url points at a private or local network address; {PRIVATE_HINT}", host=host,
                    address=str(address),
                )
        return addresses


def check_public_url(url: str, allow_private: Allowance | URLPolicy) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) with a host whose every address may be called.

    ``webcal://`` is the caller's to map to https first. With ``allow_private=True`` only the
    scheme and the presence of a host are checked; nothing is resolved. A tuple of networks
    lets addresses in them through, besides public ones.
    """
    URLPolicy.of(allow_private).check_url(url)


__all__ = ["Allowance", "URLPolicy", "UnsafeURL", "UnresolvableURL", "check_public_url", "is_public_address"]
