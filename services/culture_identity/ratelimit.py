"""Failed-login limiting per (login, client IP) in Redis: a counter with a fixed window.

Redis, not PostgreSQL: every api-write replica must see the same counters, they are hot and
short-lived (TTL), and losing them on a Redis restart is harmless.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

_KEY_PREFIX = "culture:identity:login-failures:"


def limiter_key(login: str, client_ip: str) -> str:
    """The Redis key for one login+IP (hashed: no user input, no unbounded length in key names)."""
    digest = hashlib.sha256(f"{login}\x00{client_ip}".encode()).hexdigest()[:32]
    return _KEY_PREFIX + digest


class LoginLimiter:
    """Allows `max_failures` failed logins per login+IP per `window` seconds."""

    def __init__(self, redis_url: str, *, max_failures: int, window: int) -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.max_failures = max_failures
        self.window = window

    async def ping(self) -> None:
        await self._redis.ping()

    async def blocked_for(self, login: str, client_ip: str) -> int:
        """Seconds until this login+IP may try again (0 when it may try now)."""
        key = limiter_key(login, client_ip)
        count = await self._redis.get(key)
        if count is None or int(count) < self.max_failures:
            return 0
        ttl = await self._redis.ttl(key)
        return max(int(ttl), 1)

    async def failed(self, login: str, client_ip: str) -> int:
        """Count one failure; returns the failures in the current window."""
        key = limiter_key(login, client_ip)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window, nx=True)  # the window starts at the first failure
            count, _ = await pipe.execute()
        return int(count)

    async def succeeded(self, login: str, client_ip: str) -> None:
        """A successful login clears the count."""
        await self._redis.delete(limiter_key(login, client_ip))

    async def close(self) -> None:
        await self._redis.aclose()
