"""Client message ids claimed in Redis: the send's idempotency check without a Cassandra round trip.

A send with a `client_message_id` must find the message an earlier send of that id got (a retry is a
no-op). The durable record is the `client_ids` row in Cassandra; claiming it with a lightweight
transaction (Paxos) cost a send ~3.5 ms and a second Cassandra request (bench/chat.py). Here the
claim is one Redis round trip, and the row is written in the message's own batch:

    GET <prefix>client-ids-since
    SET <prefix>client-id:<conversation>:<sender>:<client id> <message id> NX GET EX <ttl>

(one Lua script: the check and the claim are atomic). The first key says when this Redis began
holding claims (written once, at the api-write's start or by the first claim after a loss; it never
expires). Redis's answer is trusted only when it cannot have lost a claim of this conversation: it has
held claims since before the conversation was created, or for longer than a claim lives (a lost
claim was then older than the window anyway). Otherwise -- Redis restarted empty, was replaced, or is
away -- the caller claims through the lightweight transaction, which sees every `client_ids` row,
the batch-written ones included.

- The window: a retry within `CULTURE_CHAT_CLIENT_ID_TTL_SECONDS` (a day by default) is always a
  no-op; after it, a retry in a conversation whose claims Redis held is a new message (the bound every
  idempotency-key store has).
- Redis must not evict keys (`maxmemory-policy noeviction`, its default): an evicted claim, unlike a
  lost Redis, is not noticed.
- With several Cassandra replicas, the fallback's Paxos read sees a batch-written row only once the
  write reached a quorum (the batch is written at the session's consistency level).
"""

from __future__ import annotations

import logging
import time
import uuid

import redis.asyncio as aioredis

log = logging.getLogger("culture_chat.claims")

#: clocks of the api-write replicas may disagree by this much (ms): Redis's "since" must be older than a
#: conversation's creation by at least this for Redis to be trusted with it
CLOCK_MARGIN_MS = 1000
#: after Redis failed, claims go to Cassandra for this long before Redis is tried again
BACKOFF_SECONDS = 5.0


def claim_key(prefix: str, conversation_id: str, sender: str, client_message_id: str) -> str:
    return f"{prefix}client-id:{conversation_id}:{sender}:{client_message_id}"


def since_key(prefix: str) -> str:
    return f"{prefix}client-ids-since"


#: KEYS: the claim, "since"; ARGV: now ms, the conversation's creation ms, ttl s, clock margin ms, message id.
#: {0} Redis cannot tell (nothing written but a missing "since"); {1} claimed; {2, id} an earlier claim.
#: One script, so nothing is claimed in Redis that the caller then has to claim in Cassandra instead.
_CLAIM = """
local since = tonumber(redis.call('GET', KEYS[2]))
local now, created, ttl, margin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not since then
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
  return {0}
end
if since + margin > created and now - since < ttl * 1000 then
  return {0}
end
local earlier = redis.call('SET', KEYS[1], ARGV[5], 'NX', 'GET', 'EX', ttl)
if earlier then
  return {2, earlier}
end
return {1}
"""


class ClientIdClaims:
    """Claims in Redis; `claim` answers None whenever the caller must claim through Cassandra."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client, self.prefix, self.ttl = client, prefix, ttl_seconds
        self._script = client.register_script(_CLAIM)
        self._down_until = 0.0

    async def start(self) -> None:
        """Before the first send: Redis holds every claim from now on, so conversations created from
        now on are claimed in Redis at once (best effort: the first claim sets it otherwise)."""
        try:
            await self.client.set(since_key(self.prefix), int(time.time() * 1000), nx=True)
        except (aioredis.RedisError, OSError) as exc:
            log.warning("chat: Redis away at start, client ids are claimed through Cassandra (%r)", exc)

    async def claim(self, conversation_id: str, created_ms: int, sender: str, client_message_id: str,
                    message_id: uuid.UUID) -> uuid.UUID | None:
        """`message_id` when this send is the first of its client id, the first send's message id when
        it is a retry, None when Redis cannot tell (then claim through Cassandra)."""
        if time.monotonic() < self._down_until:
            return None
        keys = [claim_key(self.prefix, conversation_id, sender, client_message_id), since_key(self.prefix)]
        args = [int(time.time() * 1000), created_ms, self.ttl, CLOCK_MARGIN_MS, str(message_id)]
        try:
            answer = await self._script(keys=keys, args=args)
        except (aioredis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("chat: client ids claimed through Cassandra for %.0f s (Redis: %r)", BACKOFF_SECONDS,
                        exc)
            return None
        if answer[0] == 1:
            return message_id
        if answer[0] == 2:
            earlier = answer[1]
            try:
                return uuid.UUID(earlier.decode() if isinstance(earlier, bytes) else str(earlier))
            except ValueError:
                log.warning("chat: ignoring a malformed client id claim in Redis (%s)", keys[0])
        return None
