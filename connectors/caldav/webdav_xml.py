"""The few WebDAV/CalDAV XML documents calbook sends, and a parser for the multistatus replies.

We build the sync-collection, calendar-multiget and PROPFIND bodies ourselves rather than go
through ``caldav.Calendar.get_objects_by_sync_token``: that method silently falls back to
downloading the whole calendar under a ``fake-`` token when the REPORT fails, and we need
the opposite - know exactly which request failed, and resync to a *real* token. The HTTP
side (auth, session, TLS) still goes through ``caldav.DAVClient``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from lxml import etree

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"

_NS = f'xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:cs="{CALSERVER}"'
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def sync_collection_body(sync_token: str | None) -> str:
    """RFC 6578 sync-collection asking for ETags only (data comes later via multiget)."""
    token = escape(sync_token or "")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection {_NS}>'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def multiget_body(hrefs: list[str]) -> str:
    """RFC 4791 calendar-multiget for data and ETag of the given hrefs, sent exactly as the server spelt them."""
    refs = "".join(f"<d:href>{escape(h)}</d:href>" for h in hrefs)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget {_NS}>'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{refs}</c:calendar-multiget>"
    )


def uid_query_body(uid: str) -> str:
    """RFC 4791 calendar-query for the objects whose VEVENT has this UID (ETags only)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><c:calendar-query {_NS}><d:prop><d:getetag/></d:prop>'
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="UID">'
        f'<c:text-match collation="i;octet">{escape(uid)}</c:text-match>'
        "</c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


def propfind_body(*props: tuple[str, str]) -> str:
    names = "".join(f'<x:{name} xmlns:x="{ns}"/>' for ns, name in props)
    return f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NS}><d:prop>{names}</d:prop></d:propfind>'


@dataclass(slots=True)
class DavResponse:
    """One ``<d:response>``: its href (the normal form, a decoded path), own status and the props found (200).

    ``raw`` is the href exactly as the server wrote it: that is what goes back to the server
    (Cyrus refuses a multiget href that is not spelt its way).
    """

    href: str
    status: int | None
    props: dict[str, etree._Element] = field(default_factory=dict)
    raw: str = ""

    def text(self, namespace: str, name: str) -> str | None:
        element = self.props.get(tag(namespace, name))
        if element is None:
            return None
        return (element.text or "").strip() or None


@dataclass(slots=True)
class Multistatus:
    responses: list[DavResponse]
    sync_token: str | None


def href_path(href: str) -> str:
    """The one normal form hrefs are compared and stored in: the decoded path.

    Servers answer with absolute URLs or paths, percent-encoded or not, in upper or lower
    case hex (``%7B``, ``%7b`` and ``{`` are one name). Only comparison uses it; requests use
    the server's own spelling (``DavResponse.raw``), or ``encoded_path`` when there is none.
    """
    return unquote(urlsplit(href.strip()).path)


def encoded_path(path: str) -> str:
    """A decoded path percent-encoded the canonical way (upper-case hex, only ``/`` and unreserved left)."""
    return quote(path, safe="/")


def raw_path(href: str) -> str:
    """The path of an href as the server spelt it (an absolute URL's host part dropped)."""
    href = href.strip()
    return urlsplit(href).path if "://" in href else href


def _status_code(element: etree._Element | None) -> int | None:
    if element is None or not element.text:
        return None
    parts = element.text.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class MultistatusError(ValueError):
    """The server's 207 body is not a parseable multistatus document."""


def parse_multistatus(body: bytes | str) -> Multistatus:
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise MultistatusError(f"unparseable multistatus: {exc}") from exc
    if root is None or root.tag != tag(DAV, "multistatus"):
        raise MultistatusError("reply is not a DAV:multistatus")
    responses: list[DavResponse] = []
    for node in root.findall(tag(DAV, "response")):
        href_node = node.find(tag(DAV, "href"))
        if href_node is None or not href_node.text:
            continue
        raw = raw_path(href_node.text)
        item = DavResponse(href_path(raw), _status_code(node.find(tag(DAV, "status"))), raw=raw)
        for propstat in node.findall(tag(DAV, "propstat")):
            if _status_code(propstat.find(tag(DAV, "status"))) not in (200, None):
                continue
            prop = propstat.find(tag(DAV, "prop"))
            if prop is not None:
                for child in prop:
                    if isinstance(child.tag, str):
                        item.props[child.tag] = child
        responses.append(item)
    token_node = root.find(tag(DAV, "sync-token"))
    token = (token_node.text or "").strip() if token_node is not None else None
    return Multistatus(responses, token or None)


@dataclass(frozen=True, slots=True)
class Precondition:
    """One element of a ``DAV:error`` body (RFC 4918 16): a named precondition, with the hrefs it carries."""

    namespace: str
    name: str
    hrefs: tuple[str, ...] = ()


def parse_dav_error(body: bytes | str | None) -> list[Precondition]:
    """The preconditions of a ``<D:error>`` answer (403, 409, 412...); empty when the body is anything else."""
    if not body:
        return []
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError:
        return []
    if root is None or root.tag != tag(DAV, "error"):
        return []
    found = []
    for child in root:
        if not isinstance(child.tag, str) or child.tag in (tag(DAV, "responsedescription"),):
            continue
        namespace, _, name = child.tag[1:].partition("}")
        if namespace == "http://sabredav.org/ns":
            continue  # SabreDAV's exception class and message, not a precondition
        hrefs = tuple((h.text or "").strip() for h in child.iter(tag(DAV, "href")) if (h.text or "").strip())
        found.append(Precondition(namespace, name, hrefs))
    return found
