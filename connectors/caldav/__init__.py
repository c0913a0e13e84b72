"""CalDAV provider: busy blocks from, and booking events to, a CalDAV account (RFC 4791/6578)."""

from connectors.caldav.provider import CalDAVProvider

__all__ = ["CalDAVProvider"]
