"""The mail ledger: per user, whether the welcome mail is being sent or was sent (Redis hashes).

`mailer:welcome:<user_id>` -> {state: sending|sent|failed, event_id, message_id, email, attempts,
updated_at, reason}; `mailer:welcome-lock:<user_id>` is a short lock (SET NX PX) held while one
replica talks SMTP for that user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import redis.asyncio as aioredis

from culture_runtime.startup import ping_redis

SENDING, SENT, FAILED = "sending", "sent", "failed"


@dataclasses.dataclass(frozen=True)
class Record:
    """What the ledger knows about one user's welcome mail."""

    state: str
    event_id: str
    message_id: str
    email: str
    attempts: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# release the lock only if it is still ours (it may have expired and been taken by another replica)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Ledger:
    """The mailer's record of sent mail, in Redis."""

    def __init__(self, url: str, ttl_seconds: int, prefix: str = "mailer:") -> None:
        self.redis = aioredis.from_url(url, decode_responses=True)
        self.ttl = ttl_seconds
        self.prefix = prefix

    def _key(self, user_id: str) -> str:
        return f"{self.prefix}welcome:{user_id}"

    async def ping(self) -> None:
        """Reach Redis at start-up (tried again for a while, then fail: see culture_runtime.startup)."""
        await ping_redis(self.redis, "mailer ledger: Redis")

    async def get(self, user_id: str) -> Record | None:
        """The user's record, if any."""
        data = await self.redis.hgetall(self._key(user_id))
        if not data:
            return None
        return Record(data.get("state", ""), data.get("event_id", ""), data.get("message_id", ""),
                      data.get("email", ""), int(data.get("attempts", "0")))

    async def sending(self, user_id: str, event_id: str, message_id: str, email: str) -> None:
        """Record the intent to send (before the SMTP conversation starts)."""
        key = self._key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": SENDING, "event_id": event_id, "message_id": message_id,
                                    "email": email, "updated_at": _now()})
            pipe.hincrby(key, "attempts", 1)
            pipe.expire(key, self.ttl)
            await pipe.execute()

    async def sent(self, user_id: str) -> None:
        """Record that the SMTP server accepted the mail."""
        key = self._key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": SENT, "updated_at": _now()})
            pipe.expire(key, self.ttl)
            await pipe.execute()

    async def failed(self, user_id: str, reason: str) -> None:
        """Record a final failure, unless the mail was sent meanwhile."""
        key = self._key(user_id)
        if await self.redis.hget(key, "state") != SENT:
            await self.redis.hset(key, mapping={"state": FAILED, "reason": reason[:500],
                                                "updated_at": _now()})
            await self.redis.expire(key, self.ttl)

    async def lock(self, user_id: str, seconds: float) -> str | None:
        """Take the user's sending lock for `seconds`; its token, or None when another holder has it."""
        token = uuid.uuid4().hex
        ok = await self.redis.set(f"{self.prefix}welcome-lock:{user_id}", token, nx=True,
                                  px=max(1, int(seconds * 1000)))
        return token if ok else None

    async def unlock(self, user_id: str, token: str) -> None:
        """Release the lock if it is still ours."""
        await self.redis.eval(_RELEASE, 1, f"{self.prefix}welcome-lock:{user_id}", token)

    async def close(self) -> None:
        await self.redis.aclose()
