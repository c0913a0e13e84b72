"""Provider rate limits shared by every worker and API process (docs/rate-limits.md, decision 0024).

* ``limits`` - the value types: a GCRA ``Rate``, a ``Bucket`` per hashed key, ``Slots`` for a
  concurrency limit, the ``RequestPlan`` of one request;
* ``limiter`` - ``RateLimiter``: waits a bounded time, else ``RateLimited`` (a ``TransientError``) with ``retry_after``;
  falls back to the process's own limits when the shared store is down;
* ``redis_store``, ``database_store``, ``memory_store`` - where the buckets live;
* ``gate`` - ``RequestGate``, what each connector's HTTP choke point holds;
* ``provider_limits`` - which keys a Google, Microsoft, CalDAV or ICS request draws from;
* ``shared`` - one limiter per process, from the settings handed in;
* ``httpx_transport`` - the gate as an httpx transport (Microsoft Graph, ICS feeds).
"""

from connectors.rate_limits.gate import UNLIMITED, RequestGate
from connectors.rate_limits.provider_limits import ProviderLimits
from connectors.rate_limits.shared import provider_limits

__all__ = ["UNLIMITED", "ProviderLimits", "RequestGate", "provider_limits"]
