"""Chat badges: how many messages reached a user since their badge was last reset, from
`chat.message-sent` (the notifier sends no mail per message; the gateway shows the badge when the
user connects, then resets it).

Redis: `notifier:chat-badge:<user>` (hash: conversation id -> messages) and, per counted message,
`notifier:chat-counted:<user>:<message id>` (a marker with a TTL) so a redelivered event is counted
once. A Lua script does both atomically.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from culture.events.v1 import chat_events_pb2
from culture_events.codec import decode
from culture_events.message import Message

log = logging.getLogger("culture_notifier")

PREFIX = "notifier:"
#: how long a counted message id is remembered (redeliveries come within minutes, not days)
COUNTED_TTL_SECONDS = 3 * 86400
#: how long an untouched badge is kept
BADGE_TTL_SECONDS = 30 * 86400

_COUNT = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

_TAKE = """
local all = redis.call('HGETALL', KEYS[1])
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) end
return all
"""


def badge_key(user_id: str) -> str:
    return f"{PREFIX}chat-badge:{user_id}"


def counted_key(user_id: str, message_id: str) -> str:
    return f"{PREFIX}chat-counted:{user_id}:{message_id}"


class ChatBadges:
    """The badges in Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._count = redis.register_script(_COUNT)
        self._take = redis.register_script(_TAKE)

    async def count(self, user_id: str, conversation_id: str, message_id: str) -> bool:
        """Count one message for the user; False when it was counted before."""
        done = await self._count(keys=[badge_key(user_id), counted_key(user_id, message_id)],
                                 args=[conversation_id, COUNTED_TTL_SECONDS, BADGE_TTL_SECONDS])
        return bool(done)

    async def read(self, user_id: str, reset: bool) -> tuple[int, list[str]]:
        """(messages, their conversations) of the badge; reset to zero when asked."""
        flat = await self._take(keys=[badge_key(user_id)], args=["1" if reset else "0"])
        pairs = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in zip(flat[::2], flat[1::2],
                                                                                      strict=True)}
        return sum(pairs.values()), sorted(pairs)


class BadgeCounter:
    """Handles chat.message-sent: one more message on each recipient's badge."""

    def __init__(self, badges: ChatBadges) -> None:
        self.badges = badges

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, chat_events_pb2.MessageSent)
        recipients = list(event.recipient_user_ids) or [event.recipient_user_id]
        for user in recipients:
            if user and user != event.sender_user_id:
                await self.badges.count(user, event.conversation_id, event.message_id)
        return []
