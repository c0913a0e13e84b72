"""The WebDAV/CalDAV requests calbook makes, one function each, over a ``DavSession``.

Every function returns parsed results or raises a connector error (``errors.error_for_status``);
none decides what a result means for busy time - that is ``provider``'s job. Hrefs come back
keyed by their normal form (``webdav_xml.href_path``), with the server's own spelling beside
it, and go out in the server's spelling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

from connectors.caldav.errors import error_for_status, translated
from connectors.caldav.http import DavReply, DavSession
from connectors.caldav.webdav_xml import (
    CALDAV,
    CALSERVER,
    DAV,
    DavResponse,
    MultistatusError,
    encoded_path,
    href_path,
    multiget_body,
    parse_multistatus,
    propfind_body,
    sync_collection_body,
    tag,
    uid_query_body,
)

XML = "application/xml; charset=utf-8"
#: Hrefs per calendar-multiget REPORT: big enough to keep a full sync to a few dozen requests
#: for 10,000 events, small enough that one reply stays a few MB.
MULTIGET_BATCH = 250
#: Pages of a truncated (507) sync-collection reply we follow before resyncing from scratch.
MAX_SYNC_PAGES = 50


class SyncReportFailed(Exception):
    """The sync-collection REPORT was refused or unusable: the token cannot be used."""


@dataclass(slots=True)
class Changes:
    """What the server says changed: key -> new ETag, removed keys, and the server's spelling of each href."""

    changed: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Fetched:
    """A multiget's outcome: data by key, keys the server says are gone (404/410), and nothing else."""

    found: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)


def propfind(http: DavSession, url: str, depth: int, *props: tuple[str, str]) -> tuple[list[DavResponse], str]:
    """The responses of a PROPFIND, and the URL that answered (after redirects) to resolve hrefs against."""
    with translated("PROPFIND", url):
        reply = http.request("PROPFIND", url, propfind_body(*props), {"Depth": str(depth), "Content-Type": XML})
        if reply.status != 207:
            raise error_for_status(reply.status, "PROPFIND", url, reply.retry_after, reply.body)
        return parse_multistatus(reply.body).responses, reply.url


def ctag(http: DavSession, calendar_url: str) -> str | None:
    """The collection's change tag (``CS:getctag``, else its ``DAV:sync-token`` property)."""
    found, _ = propfind(http, calendar_url, 0, (CALSERVER, "getctag"), (DAV, "sync-token"))
    if not found:
        return None
    return found[0].text(CALSERVER, "getctag") or found[0].text(DAV, "sync-token")


def etag_listing(http: DavSession, calendar_url: str) -> Changes:
    """Every object of the calendar with its ETag (one depth-1 PROPFIND), as ``changed``."""
    collection = href_path(calendar_url).rstrip("/")
    listing = Changes()
    found, _ = propfind(http, calendar_url, 1, (DAV, "getetag"), (DAV, "resourcetype"))
    for item in found:
        if item.href.rstrip("/") == collection:
            continue
        resourcetype = item.props.get(tag(DAV, "resourcetype"))
        if resourcetype is not None and resourcetype.find(tag(DAV, "collection")) is not None:
            continue
        etag = item.text(DAV, "getetag")
        if etag:
            listing.changed[item.href] = etag
            listing.raw[item.href] = item.raw
    return listing


def sync_changes(http: DavSession, calendar_url: str, token: str | None) -> tuple[str, Changes]:
    """Follow sync-collection (and its 507 truncation pages) from ``token`` (``None``: everything)."""
    collection = href_path(calendar_url).rstrip("/")
    changes = Changes()
    current = token
    for _page in range(MAX_SYNC_PAGES):
        with translated("sync-collection", calendar_url):
            reply = http.request("REPORT", calendar_url, sync_collection_body(current),
                                 {"Depth": "1", "Content-Type": XML})
            if reply.status != 207:
                _raise_unless_resyncable(reply, calendar_url)
                raise SyncReportFailed(f"HTTP {reply.status}")
            try:
                answer = parse_multistatus(reply.body)
            except MultistatusError as exc:
                raise SyncReportFailed(str(exc)) from exc
        if not answer.sync_token:
            raise SyncReportFailed("reply without a sync-token")
        truncated = False
        for item in answer.responses:
            if item.href.rstrip("/") == collection:
                truncated = truncated or item.status == 507
                continue
            etag = item.text(DAV, "getetag")
            changes.raw[item.href] = item.raw
            if item.status in (404, 410) or (etag is None and item.status not in (None, 200)):
                changes.deleted.add(item.href)
                changes.changed.pop(item.href, None)
            elif etag is not None:
                changes.changed[item.href] = etag
                changes.deleted.discard(item.href)
        if not truncated:
            return answer.sync_token, changes
        if answer.sync_token == current:
            raise SyncReportFailed("truncated reply without progress")
        current = answer.sync_token
    raise SyncReportFailed(f"still truncated after {MAX_SYNC_PAGES} pages")


def _raise_unless_resyncable(reply: DavReply, url: str) -> None:
    """Credentials, overload and outage are not the token's fault: raise those instead of resyncing."""
    if reply.status in (401, 429, 502, 503, 504):
        raise error_for_status(reply.status, "sync-collection", url, reply.retry_after, reply.body)


def multiget(http: DavSession, calendar_url: str, keys: Sequence[str], spelling: Mapping[str, str]) -> Fetched:
    """Data and ETag of ``keys``, asked for in the server's spelling (``spelling``, else canonical encoding).

    An object counts as gone only when the server answers its href with 404 or 410; any other
    per-href answer (Cyrus's 403 for an href not spelt its way, an omitted href) leaves it
    neither fetched nor gone.
    """
    outcome = Fetched()
    wanted = set(keys)
    for offset in range(0, len(keys), MULTIGET_BATCH):
        batch = list(keys[offset : offset + MULTIGET_BATCH])
        hrefs = [spelling.get(key) or encoded_path(key) for key in batch]
        with translated("calendar-multiget", calendar_url):
            reply = http.request("REPORT", calendar_url, multiget_body(hrefs), {"Depth": "1", "Content-Type": XML})
            if reply.status != 207:
                raise error_for_status(reply.status, "calendar-multiget", calendar_url, reply.retry_after, reply.body)
            for item in parse_multistatus(reply.body).responses:
                if item.href not in wanted:
                    continue  # Cyrus names the collection (or nothing) in its per-href errors
                data = item.text(CALDAV, "calendar-data")
                if item.status in (None, 200) and data:
                    outcome.found[item.href] = (item.text(DAV, "getetag"), data)
                elif item.status in (404, 410):
                    outcome.gone.add(item.href)
    outcome.gone -= set(outcome.found)
    return outcome


def find_uid(http: DavSession, calendar_url: str, uid: str) -> list[str]:
    """Keys of the objects in one calendar whose VEVENT has this UID (a calendar-query)."""
    with translated("calendar-query", calendar_url):
        reply = http.request("REPORT", calendar_url, uid_query_body(uid), {"Depth": "1", "Content-Type": XML})
        if reply.status != 207:
            raise error_for_status(reply.status, "calendar-query", calendar_url, reply.retry_after, reply.body)
        collection = href_path(calendar_url).rstrip("/")
        return [
            item.href for item in parse_multistatus(reply.body).responses
            if item.status in (None, 200) and item.href.rstrip("/") != collection
        ]


def put(http: DavSession, url: str, body: str, headers: Mapping[str, str]) -> DavReply:
    return http.request("PUT", url, body, {"Content-Type": "text/calendar; charset=utf-8", **headers})


def get(http: DavSession, url: str) -> tuple[str | None, str] | None:
    """``(ETag, text)`` of a resource, ``None`` when it does not exist."""
    reply = http.request("GET", url, b"", {"Accept": "text/calendar"})
    if reply.status in (404, 410):
        return None
    if reply.status != 200:
        raise error_for_status(reply.status, "GET", url, reply.retry_after, reply.body)
    return reply.header("ETag"), reply.body.decode("utf-8", errors="replace")


def delete(http: DavSession, url: str) -> bool:
    """Delete a resource; ``False`` when it was not there."""
    reply = http.request("DELETE", url)
    if reply.status in (200, 202, 204):
        return True
    if reply.status in (404, 410):
        return False
    raise error_for_status(reply.status, "DELETE", url, reply.retry_after, reply.body, event_write=True)


def absolute(base: str, key: str) -> str:
    """The URL of an object key (a decoded path) on ``base``'s host."""
    return urljoin(base, encoded_path(key))
