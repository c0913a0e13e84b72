"""The few WebDAV/CalDAV XML documents calbook sends, and a parser for the multistatus replies.

We build the sync-collection, calendar-multiget and PROPFIND bodies ourselves rather than go
through ``caldav.Calendar.get_objects_by_sync_token``: that method silently falls back to
downloading the whole calendar under a ``fake-`` token when the REPORT fails, and we need
the opposite - know exactly which request failed, and resync to a *real* token. The HTTP
side (auth, session, TLS) still goes through ``caldav.DAVClient``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit
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
    """RFC 4791 calendar-multiget for data and ETag of the given hrefs (paths)."""
    refs = "".join(f"<d:href>{escape(h)}</d:href>" for h in hrefs)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget {_NS}>'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{refs}</c:calendar-multiget>"
    )


def propfind_body(*props: tuple[str, str]) -> str:
    names = "".join(f'<x:{name} xmlns:x="{ns}"/>' for ns, name in props)
    return f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NS}><d:prop>{names}</d:prop></d:propfind>'


@dataclass(slots=True)
class DavResponse:
    """One ``<d:response>``: its href (a decoded path), own status and the props found (200)."""

    href: str
    status: int | None
    props: dict[str, etree._Element] = field(default_factory=dict)

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
    """Servers answer with absolute URLs or paths, encoded or not; compare decoded paths."""
    return unquote(urlsplit(href.strip()).path)


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
        item = DavResponse(href_path(href_node.text), _status_code(node.find(tag(DAV, "status"))))
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
