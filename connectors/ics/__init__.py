"""Read-only iCalendar feed subscriptions (``webcal://``/``https://`` URLs)."""

from connectors.ics.provider import ICSFeedProvider

__all__ = ["ICSFeedProvider"]
