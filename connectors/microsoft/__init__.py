"""Microsoft 365 / Outlook.com calendars through Microsoft Graph (docs/sync.md#microsoft-365).

``oauth`` (MSAL: authorization code with PKCE, refresh), ``graph`` (the HTTP client: retries,
per-mailbox concurrency, error classes), ``events`` (Graph events <-> busy intervals and the
booking's event body), ``timezones`` (Windows zone names -> IANA) and ``provider`` (the
``CalendarProvider``: delta pull, push, subscriptions, getSchedule).
"""
