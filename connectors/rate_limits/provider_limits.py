"""``ProviderLimits``: the gate of each provider's requests, from the settings' limits.

Which keys a request draws from (docs/rate-limits.md):

* Google Calendar API: the user (the connected Google account) and the project (the OAuth
  client id), each "per minute" quota as a bucket that never grants more than the quota in any
  minute.
* Microsoft Graph, Outlook service: the app and mailbox (10,000 requests in 10 minutes, 4 at once)
  and the app across all tenants. Only requests to the Graph root count; the token endpoint is
  another service.
* CalDAV and ICS: the host and port of each URL requested (redirects and sibling hosts each on
  their own), at a polite rate: no server publishes one.

A 429 pauses the narrowest key: the user, the mailbox, the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from config.settings import RateLimitSection
from connectors.rate_limits.gate import UNLIMITED, RequestGate
from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.limits import Bucket, Rate, RequestPlan, Slots, key_for


def host_of(url: str) -> str | None:
    """``host:port`` of an http(s) URL (the port its scheme's default when not given)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.hostname.lower().rstrip('.')}:{port or (443 if parts.scheme.lower() == 'https' else 80)}"


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Builds each provider's ``RequestGate`` on one process's ``limiter`` (``None``: unlimited)."""

    limiter: RateLimiter | None
    section: RateLimitSection

    def _gate(self, plan_for: Callable[[str], RequestPlan | None], connection_id: str | None,
              person_waits: bool) -> RequestGate:
        if self.limiter is None:
            return UNLIMITED
        s = self.section
        return RequestGate(
            self.limiter, plan_for, connection_id=connection_id,
            max_wait=s.person_max_wait_seconds if person_waits else s.max_wait_seconds,
            default_pause=s.default_pause_seconds, max_pause=s.max_pause_seconds,
        )

    def _key(self, kind: str, *parts: str) -> str:
        return key_for(self.section.key_prefix, kind, *parts)

    def google(self, *, user: str, project: str, connection_id: str | None = None,
               person_waits: bool = False) -> RequestGate:
        """Every Calendar API request of one Google account (``user``) in one project (client id)."""
        s = self.section
        plan = RequestPlan((
            Bucket(self._key("google:user", project, user), Rate.within(s.google_user_per_minute, 60, s.google_burst)),
            Bucket(self._key("google:project", project), Rate.within(s.google_project_per_minute, 60, s.google_burst)),
        ), provider="google")
        return self._gate(lambda url: plan, connection_id, person_waits)

    def microsoft(self, *, mailbox: str, app: str, graph_root: str, connection_id: str | None = None,
                  person_waits: bool = False) -> RequestGate:
        """Graph requests for one mailbox by one app; requests elsewhere (the token endpoint) pass."""
        s = self.section
        root = graph_root.rstrip("/") + "/"
        mailbox_key = self._key("microsoft:mailbox", app, mailbox)
        plan = RequestPlan(
            (
                Bucket(mailbox_key, Rate.within(s.microsoft_mailbox_requests, s.microsoft_mailbox_period_seconds,
                                                s.microsoft_burst)),
                Bucket(self._key("microsoft:app", app), Rate.within(s.microsoft_app_per_10_seconds, 10,
                                                                   s.microsoft_burst)),
            ),
            Slots(mailbox_key + ":slots", s.microsoft_mailbox_concurrency, s.lease_seconds),
            provider="microsoft",
        )
        return self._gate(lambda url: plan if url.startswith(root) else None, connection_id, person_waits)

    def _per_host(self, kind: str, rate: Rate, connection_id: str | None, person_waits: bool) -> RequestGate:
        def plan_for(url: str) -> RequestPlan | None:
            host = host_of(url)
            return RequestPlan((Bucket(self._key(kind, host), rate),), provider=kind.split(":")[0]) if host else None

        return self._gate(plan_for, connection_id, person_waits)

    def caldav(self, *, connection_id: str | None = None, person_waits: bool = False) -> RequestGate:
        s = self.section
        return self._per_host("caldav:host", Rate.per_second(s.caldav_host_per_second, s.caldav_host_burst),
                              connection_id, person_waits)

    def ics(self, *, connection_id: str | None = None, person_waits: bool = False) -> RequestGate:
        s = self.section
        return self._per_host("ics:host", Rate.per_second(s.ics_host_per_second, s.ics_host_burst),
                              connection_id, person_waits)
