"""Abuse limits in Redis: fixed-window counters, counted and read in ONE atomic script call.

A check-then-increment (GET, decide, INCR later) lets a burst through: every concurrent request
reads the same count before any of them adds to it. Here each attempt increments first and learns
its own rank in the window from the same round trip, so exactly `limit` attempts pass, however many
arrive at once.

- LoginLimiter: attempts per (login, client address); a successful login clears the count.
- RegistrationLimiter: registrations per client address, and for everyone together (each costs an
  argon2 hash: the global bound keeps a botnet from pinning the api-write CPUs).

Redis, not PostgreSQL: every api-write replica must see the same counters, they are hot and
short-lived (TTL), and losing them on a Redis restart is harmless.
"""

from __future__ import annotations

import dataclasses
import hashlib

import redis.asyncio as aioredis

from culture_runtime.startup import ping_redis

_KEY_PREFIX = "culture:identity:"

# KEYS[1]: the counter; ARGV[1]: the window in seconds. Returns {count in this window, seconds left}.
# The window starts at the first attempt (EXPIRE only when INCR created the key).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# KEYS[1]: the counter. Takes one attempt back (never below zero, never creates the key).
_REFUND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


def limiter_key(kind: str, *parts: str, prefix: str = _KEY_PREFIX) -> str:
    """The Redis key of one counter (hashed: no user input, no unbounded length in key names)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}{kind}:{digest}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One attempt's outcome: allowed, or refused for `retry_after` seconds."""

    allowed: bool
    count: int
    retry_after: int


class FixedWindow:
    """At most `limit` hits per key per `window` seconds, counted atomically."""

    def __init__(self, redis: aioredis.Redis, *, limit: int, window: int) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)
        self._refund = redis.register_script(_REFUND)
        self.limit = limit
        self.window = window

    async def hit(self, key: str) -> Verdict:
        """Count one attempt; allowed while it is among the first `limit` of the window."""
        count, ttl = await self._hit(keys=[key], args=[self.window])
        count, ttl = int(count), max(int(ttl), 1)
        return Verdict(count <= self.limit, count, 0 if count <= self.limit else ttl)

    async def reset(self, key: str) -> None:
        await self._redis.delete(key)

    async def refund(self, key: str) -> None:
        """Take one counted attempt back (one that was never decided)."""
        await self._refund(keys=[key])


class _RedisLimiter:
    def __init__(self, redis_url: str, prefix: str = _KEY_PREFIX) -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix

    def _key(self, kind: str, *parts: str) -> str:
        return limiter_key(kind, *parts, prefix=self._prefix)

    async def ping(self) -> None:
        """Reach Redis at start-up (tried again while it does not answer, see culture_runtime.startup)."""
        await ping_redis(self._redis, "identity rate limiter: Redis")

    async def close(self) -> None:
        await self._redis.aclose()


class LoginLimiter(_RedisLimiter):
    """Allows `max_failures` login attempts per login+address per `window` seconds; a success clears
    the count. Attempts are counted before the password is checked (INCR first), so a burst of
    guesses gets no more than the limit however concurrent it is."""

    def __init__(self, redis_url: str, *, max_failures: int, window: int, prefix: str = _KEY_PREFIX) -> None:
        super().__init__(redis_url, prefix)
        self.max_failures = max_failures
        self.window = window
        self._counter = FixedWindow(self._redis, limit=max_failures, window=window)

    async def attempt(self, login: str, client_ip: str) -> int:
        """Count one attempt: 0 when it may go ahead, else the seconds until the window ends."""
        return (await self._counter.hit(self._key("login-attempts", login, client_ip))).retry_after

    async def succeeded(self, login: str, client_ip: str) -> None:
        """A successful login clears the count."""
        await self._counter.reset(self._key("login-attempts", login, client_ip))

    async def undecided(self, login: str, client_ip: str) -> None:
        """An attempt that could not be checked (the user store away) does not count: an outage must
        not lock people out of their accounts."""
        await self._counter.refund(self._key("login-attempts", login, client_ip))


class RegistrationLimiter(_RedisLimiter):
    """Allows `per_address` registrations per client address and `total` for everyone per `window`
    seconds. An attempt refused by the per-address limit does not use up the global one."""

    def __init__(self, redis_url: str, *, per_address: int, total: int, window: int,
                 prefix: str = _KEY_PREFIX) -> None:
        super().__init__(redis_url, prefix)
        self._per_address = FixedWindow(self._redis, limit=per_address, window=window)
        self._total = FixedWindow(self._redis, limit=total, window=window)

    async def attempt(self, client_ip: str) -> int:
        """Count one registration: 0 when it may go ahead, else the seconds to wait."""
        mine = await self._per_address.hit(self._key("register-per-address", client_ip))
        if not mine.allowed:
            return mine.retry_after
        return (await self._total.hit(self._key("register-total", "all"))).retry_after
