""""New items" notices: when copies land in readers' timelines the worker publishes one small JSON
message per reader on Redis pub/sub; the gateway relays a connected reader's notices over
server-sent events (`GET /api/feed/events`). Best effort by design: a reader who is not connected
misses nothing but the notice (the timeline itself is in Cassandra), so nothing is stored or retried.

    {"type": "feed-new-items", "user_id": ..., "count": 1, "actor_user_id": ..., "review_id": ...}
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("culture_feed.push")

PREFIX = "feed:"


def user_channel(user_id: str) -> str:
    """The pub/sub channel of one reader's notices."""
    return f"{PREFIX}user:{user_id}"


def notice(user_id: str, actor_user_id: str, review_id: str, count: int = 1) -> dict[str, Any]:
    return {"type": "feed-new-items", "user_id": user_id, "count": count, "actor_user_id": actor_user_id,
            "review_id": review_id}


class Notifier:
    """Publishes notices (one pipelined round trip per batch of readers)."""

    def __init__(self, redis_url: str) -> None:
        self.client = aioredis.from_url(redis_url)

    async def new_items(self, readers: Sequence[str], actor_user_id: str, review_id: str) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for user in readers:
                    pipe.publish(user_channel(user), json.dumps(notice(user, actor_user_id, review_id)))
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a notice is best effort; the items are stored
            log.warning("feed: could not publish new-item notices (%s)", exc)

    async def close(self) -> None:
        await self.client.aclose()


async def subscribe(redis_url: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
    """Yield `user_id`'s notices as they are published, until the caller stops."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(user_channel(user_id))
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            try:
                yield json.loads(item["data"])
            except (TypeError, ValueError):
                log.warning("ignoring a malformed notice on %s", user_channel(user_id))
    finally:
        try:
            await pubsub.aclose()
        finally:
            await client.aclose()
