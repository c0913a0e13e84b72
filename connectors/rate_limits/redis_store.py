"""The limiter's store in Redis: one Lua script per operation, so every check-and-take is atomic
across all workers and machines, timed by the Redis server's clock (``TIME``), not theirs.

* A bucket is a hash ``{tat, paused}`` (microseconds since the epoch) whose TTL ends when the
  bucket would be full again: a key that expired is a full bucket, so Redis holds only the keys
  of calendars busy right now.
* Slots are a sorted set of lease holders scored by their lease's end; expired leases are
  dropped on every claim, and the set expires one lease after its last claim.

Numbers leave the scripts formatted with ``%.0f``: Lua would print a microsecond timestamp with
14 significant digits and lose the last two.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from connectors.rate_limits.limits import MICROS, Bucket, Slots, StoreDown

TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tat', 'paused')
  local tat = tonumber(state[1]) or 0
  local paused = tonumber(state[2]) or 0
  if paused > now then wait = math.max(wait, paused - now) end
  local new_tat = math.max(tat, now) + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then wait = math.max(wait, allow_at - now) end
  tats[i] = new_tat
end
if wait > 0 then return string.format('%.0f', wait) end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'tat', string.format('%.0f', tats[i]))
  redis.call('PEXPIRE', KEYS[i], math.ceil((tats[i] - now) / 1000) + 1000)
end
return '0'
"""

PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0
if now + pause > current then
  redis.call('HSET', KEYS[1], 'paused', string.format('%.0f', now + pause))
end
local want = math.ceil(pause / 1000) + 1000
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1
"""

CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease + 1000)
return 1
"""


@contextmanager
def _answering() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StoreDown(f"redis: {type(exc).__name__}") from exc


class RedisStore:
    """Buckets and slots shared by every process that uses the same Redis and key prefix."""

    shared = True

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._take: Any = client.register_script(TAKE)
        self._pause: Any = client.register_script(PAUSE)
        self._claim: Any = client.register_script(CLAIM)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        # Short timeouts: a limiter that cannot answer quickly is treated as down (the caller
        # falls back to its own process's limits) rather than holding the request.
        return cls(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30))

    def take(self, buckets: Sequence[Bucket]) -> float:
        args: list[int] = []
        for bucket in buckets:
            args += [bucket.rate.interval_us, bucket.rate.burst]
        with _answering():
            wait = int(self._take(keys=[b.key for b in buckets], args=args))
        return wait / MICROS

    def pause(self, key: str, seconds: float) -> None:
        with _answering():
            self._pause(keys=[key], args=[round(seconds * MICROS)])

    def claim(self, slots: Slots, holder: str) -> bool:
        with _answering():
            return bool(self._claim(keys=[slots.key], args=[slots.limit, round(slots.lease_seconds * 1000), holder]))

    def release(self, slots: Slots, holder: str) -> None:
        with _answering():
            self.client.zrem(slots.key, holder)

    def after_fork(self) -> None:
        """Nothing to do: redis-py's pool notices the new process and opens its own connections."""

    def close(self) -> None:
        self.client.close()
