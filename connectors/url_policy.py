"""Which user-given URLs the server may call: public http(s) hosts only, unless configured otherwise.

Users hand calbook URLs that the server then calls (webhook receivers, CalDAV servers, ICS
feeds). Without a check, a user could make the server call itself, its private network or a
cloud metadata endpoint (SSRF). ``check_public_url`` resolves the host with
``socket.getaddrinfo`` and refuses the URL unless *every* address it resolves to is public:
not loopback, private, link-local, multicast, reserved, unspecified or otherwise non-global,
including IPv4 addresses hidden in IPv6 forms (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo).

Self-hosters whose calendar server or webhook receiver lives on a private network set
``CALBOOK_ALLOW_PRIVATE_URLS=true``; the callers pass ``allow_private`` from the settings, and
then only the scheme and host are checked (no DNS lookup).

Errors: ``UnsafeURL`` (a ``PermanentError``: retrying cannot help) for a URL that may not be called, and its subclass
``UnresolvableURL`` when the host does not resolve (which may be temporary). Their messages
name the host at most, never the whole URL (it may carry credentials or a private token).

The check happens before the request, and the HTTP client resolves the name again when it
connects: it narrows SSRF to DNS rebinding within that gap, it does not pin the address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from connectors.base import PermanentError

ALLOWED_SCHEMES = ("http", "https")
PRIVATE_HINT = "set CALBOOK_ALLOW_PRIVATE_URLS=true to allow"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 link-local answer may carry its zone ("fe80::1%eth0"); the zone does not change the verdict.
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise UnresolvableURL(f"url host {host} does not resolve", host=host)
    return addresses


def check_public_url(url: str, allow_private: bool) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) with a host whose every address is public.

    ``webcal://`` is the caller's to map to https first. With ``allow_private`` only the scheme
    and the presence of a host are checked; nothing is resolved.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError as exc:  # an unparsable netloc or port
        raise UnsafeURL("url is not a valid http(s) URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES or not host:
        raise UnsafeURL("url must be an absolute http or https URL")
    if allow_private:
        return
    for address in _resolve(host, port or (443 if scheme == "https" else 80)):
        if not is_public_address(address):
            raise UnsafeURL(
                f"url points at a private or local network address; {PRIVATE_HINT}", host=host, address=str(address)
            )


__all__ = ["UnsafeURL", "UnresolvableURL", "check_public_url", "is_public_address"]
