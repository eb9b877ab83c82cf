"""Job records in Redis: one hash per job, updated and published atomically by a Lua script.

`notifier:job:<job_id>` (hash): job_id, user_id, steps (comma-separated names, in display order),
version, create_time, update_time, and per step `step:<name>:state|message|time`. A Lua script
checks the transition, applies it, increments `version` and refreshes the TTL atomically and returns
the whole hash; the snapshot is then PUBLISHed on `notifier:user:<user_id>` and
`notifier:job:<job_id>`. Two concurrent changes may publish out of order, but each snapshot is the
full state at its version, so a subscriber that keeps only newer versions never goes back in time;
a change's time is never earlier than the job's previous change (the script keeps it monotonic).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from culture_notifier.jobs import ALLOWED_FROM, snapshot
from culture_runtime.startup import ping_redis

PREFIX = "notifier:"


def job_key(job_id: str) -> str:
    """The Redis hash of a job."""
    return f"{PREFIX}job:{job_id}"


def user_channel(user_id: str) -> str:
    """The pub/sub channel of one user's job updates."""
    return f"{PREFIX}user:{user_id}"


def job_channel(job_id: str) -> str:
    """The pub/sub channel of one job's updates."""
    return f"{PREFIX}job:{job_id}"


def now_rfc3339() -> str:
    """Now, UTC, RFC 3339 with milliseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# KEYS[1] job hash. ARGV: 1 job_id, 2 user_id, 3 step, 4 state, 5 message, 6 now, 7 ttl,
# 8 steps csv (for a new job), 9 allowed-from states csv.
# Returns the hash as a flat list after a change, or {} when the change was stale or a duplicate.
_RECORD = """
local key = KEYS[1]
local step, state, now = ARGV[3], ARGV[4], ARGV[6]
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'job_id', ARGV[1], 'user_id', ARGV[2], 'steps', ARGV[8], 'version', 0,
             'create_time', now, 'update_time', now)
end
if ARGV[2] ~= '' and redis.call('HGET', key, 'user_id') == '' then
  redis.call('HSET', key, 'user_id', ARGV[2])
end
local steps = redis.call('HGET', key, 'steps')
if not string.find(',' .. steps .. ',', ',' .. step .. ',', 1, true) then
  steps = (steps == '' and step) or (steps .. ',' .. step)
  redis.call('HSET', key, 'steps', steps)
end
local current = redis.call('HGET', key, 'step:' .. step .. ':state') or 'pending'
if not string.find(',' .. ARGV[9] .. ',', ',' .. current .. ',', 1, true) then
  redis.call('EXPIRE', key, ARGV[7])
  return {}
end
-- never earlier than the job's last change: two workers' clocks read a moment apart may commit in
-- the other order, and the versions' times must not go backwards (same fixed-width RFC 3339 form)
local last = redis.call('HGET', key, 'update_time')
if last and last > now then
  now = last
end
redis.call('HSET', key, 'step:' .. step .. ':state', state, 'step:' .. step .. ':message', ARGV[5],
           'step:' .. step .. ':time', now, 'update_time', now)
redis.call('HINCRBY', key, 'version', 1)
redis.call('EXPIRE', key, ARGV[7])
return redis.call('HGETALL', key)
"""


class JobStore:
    """Reads and records jobs; `record` also publishes the snapshot of every change."""

    def __init__(self, url: str, ttl_seconds: int) -> None:
        self.redis = aioredis.from_url(url, decode_responses=True)
        self.ttl = ttl_seconds
        self._record = self.redis.register_script(_RECORD)

    async def ping(self) -> None:
        """Reach Redis at start-up (tried again for a while, then fail: see culture_runtime.startup)."""
        await ping_redis(self.redis, "notifier jobs: Redis")

    async def record(self, job_id: str, user_id: str, step: str, state: str, message: str = "", *,
                     steps: Sequence[str]) -> dict[str, Any] | None:
        """Move `step` of the job to `state` (creating the job with `steps` pending if new).

        Returns the published snapshot, or None when the change was a duplicate or stale.
        """
        flat = await self._record(keys=[job_key(job_id)], args=[
            job_id, user_id, step, state, message[:2000], now_rfc3339(), self.ttl, ",".join(steps),
            ",".join(ALLOWED_FROM[state])])
        if not flat:
            return None
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        snap = snapshot(fields, step=step)
        payload = json.dumps(snap, separators=(",", ":"))
        # published after the script: the version orders snapshots; subscribers drop older ones
        async with self.redis.pipeline(transaction=False) as pipe:
            if snap["user_id"]:
                pipe.publish(user_channel(snap["user_id"]), payload)
            pipe.publish(job_channel(job_id), payload)
            await pipe.execute()
        return snap

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's current snapshot, or None when unknown (or expired)."""
        fields = await self.redis.hgetall(job_key(job_id))
        return snapshot(fields) if fields else None

    async def close(self) -> None:
        await self.redis.aclose()
