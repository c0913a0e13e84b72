"""The HTTP side of the CalDAV provider: one account's server, checked on every hop.

Why not the caldav library's ``DAVClient``: it follows up to 30 redirects on its own (a 307
is re-sent, PROPFIND and credentials included, wherever it points), sends the Basic
credentials to any URL it is handed - including absolute hrefs the server discovered -
turns every 403 into an authorization error without its body, and bounds single reads but
not a whole exchange. ``DavSession`` does the few things calbook needs itself, on httpcore:

* **Hosts** (see ``docs/security.md#url-policy``). A request goes only to the origin of the
  URL the expert gave, or to a sibling host of the same site (iCloud answers
  ``caldav.icloud.com`` with a calendar home on ``p42-caldav.icloud.com``): same parent
  domain, never an IP literal, never a downgrade from https. Anything else - a redirect, a
  principal, a calendar home or a calendar href on another host - is refused before it is
  requested, so the credentials never leave the account's own hosts.
* **Addresses.** Connections go through ``PinnedBackend``: the host is resolved and checked
  against the URL policy when the connection is made, and the connection goes to the checked
  address. That holds for the API's verification and for every worker sync and push.
* **Redirects** are followed by hand, at most ``max_redirects`` (3), each target checked as above.
* **Rate.** Every hop waits for its host's turn in the shared rate limits (``gate``, see
  ``connectors.rate_limits``: a polite default per host, across all workers), and a 429 or a
  503 with ``Retry-After`` pauses that host for every worker.
* **Time.** ``deadline`` bounds the whole session (connect, TLS, every read and write), not
  just one read; ``timeout`` bounds each operation.
* **Errors** are connector errors whose messages name the method and the URL (without
  userinfo) - never a body or reason phrase, and nothing at all from a hop that was refused.

Statuses are returned, not raised: the provider decides what a 403 or a 412 means.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpcore

from connectors.base import PermanentError, TransientError
from connectors.caldav.errors import redact_url
from connectors.pinned_network import Deadline, PinnedBackend
from connectors.rate_limits import UNLIMITED, RequestGate
from connectors.retry_after import parse_retry_after
from connectors.url_policy import PRIVATE_HINT, UnresolvableURL, UnsafeURL, URLPolicy

REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_MAX_BODY = 64 * 1024 * 1024
USER_AGENT = "calbook-caldav/1"
#: What a request target may carry as it is: RFC 3986 pchar and "/", and "%" of existing escapes.
_KEEP = "/%:@!$&'()*+,;=~-._"
#: Second-level labels that are public suffixes under a country code (``co.uk``, ``com.au``...):
#: a host right below one of them has no sibling calbook would trust.
_PUBLIC_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org", "ne", "or", "go", "gv", "mil"})


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise PermanentError("not a valid http(s) URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError("not an absolute http(s) URL")
        return cls(scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def same_site(base: Origin, other: Origin) -> bool:
    """May a request for ``base``'s account go to ``other``? Same origin, or a sibling host.

    The same host may upgrade http to https. A sibling shares the parent domain of ``base``'s
    host (``p42-caldav.icloud.com`` beside ``caldav.icloud.com``), uses https when ``base``
    does, ``base``'s port or its scheme's default one, and neither is an IP literal; a parent
    that is a public suffix (``co.uk``) or a single label has no siblings.
    """
    if other.scheme != base.scheme and not (base.scheme == "http" and other.scheme == "https"):
        return False
    if other.host == base.host:
        return other.port == base.port or (other.scheme, other.port) == ("https", 443)
    if _is_ip(base.host) or _is_ip(other.host):
        return False
    if other.port not in (base.port, 443 if other.scheme == "https" else 80):
        return False
    labels = base.host.split(".")
    if len(labels) < 3:
        return False
    parent = labels[1:]
    if len(parent) == 2 and len(parent[1]) == 2 and parent[0] in _PUBLIC_SECOND_LEVEL:
        return False
    return other.host.endswith("." + ".".join(parent))


@dataclass(slots=True)
class DavReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    url: str  # where the answer came from, after redirects

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def retry_after(self) -> str | None:
        return self.header("Retry-After")


@dataclass(slots=True)
class DavSession:
    """HTTP for one CalDAV account (see the module docstring for the rules it keeps)."""

    url: str
    username: str
    password: str = field(repr=False)
    policy: URLPolicy = field(default_factory=URLPolicy)
    timeout: float = 30.0
    deadline: float | None = None
    max_redirects: int = 3
    verify: bool | str = True
    max_body: int = DEFAULT_MAX_BODY
    #: Called with (method, reply, seconds) after every answer, redirects included (benchmarks count with it).
    observer: Callable[[str, DavReply, float], None] | None = None
    #: The shared rate limits of the hosts this session talks to (unlimited unless handed one).
    gate: RequestGate = UNLIMITED
    _pool: httpcore.ConnectionPool = field(init=False, repr=False)
    _base: Origin = field(init=False)
    _deadline: Deadline = field(init=False)
    _auth: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._base = Origin.of(self.url)
        self._deadline = Deadline(self.deadline)
        self._auth = b"Basic " + base64.b64encode(f"{self.username}:{self.password}".encode())
        context = ssl.create_default_context(cafile=self.verify if isinstance(self.verify, str) else None)
        if self.verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, max_connections=4, http1=True, http2=False, retries=0,
            network_backend=PinnedBackend(self.policy, self._deadline),
        )

    def close(self) -> None:
        self._pool.close()

    def allows(self, url: str) -> bool:
        """True when ``url`` is on one of the account's hosts (see ``same_site``)."""
        try:
            return same_site(self._base, Origin.of(url))
        except PermanentError:
            return False

    def admit(self, url: str, what: str) -> str:
        """``url`` (a discovered href made absolute) if requests may go there; ``PermanentError`` if not."""
        if not self.allows(url):
            raise PermanentError(
                f"the server's {what} is on another host ({_host(url)}); calbook only follows the account's own hosts"
            )
        return url

    def request(
        self, method: str, url: str, body: str | bytes = b"", headers: Mapping[str, str] | None = None
    ) -> DavReply:
        content = body.encode("utf-8") if isinstance(body, str) else body
        current, verb = url, method
        for hop in range(self.max_redirects + 1):
            if not self.allows(current):
                raise PermanentError(
                    f"{method} {redact_url(url)}: redirected to another host ({_host(current)}); "
                    "calbook only follows the account's own hosts"
                )
            reply = self._send(verb, current, content, headers, first=hop == 0, original=url)
            location = reply.header("Location")
            if reply.status not in REDIRECTS or not location:
                return reply
            current = urljoin(current, location)
            if reply.status == 303 and verb != "HEAD":
                verb, content = "GET", b""
        raise PermanentError(f"{method} {redact_url(url)}: more than {self.max_redirects} redirects")

    def _send(
        self, method: str, url: str, content: bytes, headers: Mapping[str, str] | None, *, first: bool, original: str
    ) -> DavReply:
        where = f"{method} {redact_url(original)}"
        if self._deadline.expired():
            raise TransientError(f"{where}: no answer within {self._deadline.seconds:g} s")
        wire = [(b"Authorization", self._auth), (b"User-Agent", USER_AGENT.encode()),
                (b"Accept-Encoding", b"identity")]
        wire += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if content or method in ("PUT", "POST", "PROPFIND", "REPORT", "PROPPATCH"):
            wire.append((b"Content-Length", str(len(content)).encode()))
        limit = self._deadline.clamp(self.timeout, TransientError)
        timeouts = {"connect": limit, "read": limit, "write": limit, "pool": limit}
        began = time.perf_counter()
        try:
            with self.gate.admit(url), self._pool.stream(method, _wire_url(url), headers=wire, content=content or None,
                                                         extensions={"timeout": timeouts}) as response:
                data = bytearray()
                for chunk in response.iter_stream():
                    data += chunk
                    if len(data) > self.max_body:
                        raise PermanentError(f"{where}: answer larger than {self.max_body // (1024 * 1024)} MB")
                names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                reply = DavReply(response.status, names, bytes(data), url)
                self.gate.answered(url, reply.status, parse_retry_after(reply.retry_after))
                if self.observer is not None:
                    self.observer(method, reply, time.perf_counter() - began)
                return reply
        except UnresolvableURL as exc:
            raise TransientError(f"{where}: host {exc.host} does not resolve") from None
        except UnsafeURL as exc:
            if first and _host(url) == _host(original):
                raise
            raise UnsafeURL(
                f"{where}: the server pointed calbook at a private or local network address; {PRIVATE_HINT}",
                host=exc.host, address=exc.address,
            ) from None
        except httpcore.TimeoutException:
            if self._deadline.expired():
                raise TransientError(f"{where}: no answer within {self._deadline.seconds:g} s") from None
            raise TransientError(f"{where}: timed out") from None
        except httpcore.UnsupportedProtocol:
            raise PermanentError(f"{where}: invalid URL") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            raise TransientError(f"{where}: network error ({type(exc).__name__})") from None


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _wire_url(url: str) -> str:
    """``url`` for the request line: no userinfo or fragment (credentials go in the header), and
    characters a request line cannot carry (space, non-ASCII) percent-encoded - escapes the server
    wrote stay exactly as they are."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    path = quote(parts.path or "/", safe=_KEEP)
    return urlunsplit((parts.scheme, host, path, quote(parts.query, safe=_KEEP + "?"), ""))
