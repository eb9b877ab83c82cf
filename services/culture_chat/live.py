"""Live delivery and presence over Redis (shared by the chat service and the gateway).

- Each user has a pub/sub channel `<prefix>user:<id>`. api-write publishes every stored message to
  the channel of each member (the sender's other sockets see it too); a gateway subscribes to the
  channels of the users whose sockets it holds and forwards the frames. Pub/sub is at-most-once: a
  gateway that loses Redis (or a client that loses its socket) catches up from Cassandra (History
  with after_message_id), so a lost notice never loses a message.
- Presence is one hash per user, `<prefix>presence:<id>`: connection id -> the epoch milliseconds
  until which that connection counts as alive. A gateway refreshes a connection's field whenever the
  client shows life (any frame, at least every heartbeat), and deletes it on a clean close; the key
  itself expires with its newest field. A user is online while any field is in the future, so a socket
  that dies silently lapses to offline within the TTL. `<prefix>seen:<id>` keeps the last report.

Frames (JSON) on a user's channel, forwarded to the user's WebSockets as they are:
    {"type": "chat.message", "message": {...}}           (culture_chat.live.message_json)
    {"type": "chat.presence", "user_id": ..., "status": "online" | "offline"}
    {"type": "chat.delivered", "conversation_id": ..., "message_id": ..., "user_id": ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("culture_chat.live")

#: how long the last-seen time is kept
SEEN_TTL_SECONDS = 30 * 86400


def user_channel(prefix: str, user_id: str) -> str:
    return f"{prefix}user:{user_id}"


def presence_key(prefix: str, user_id: str) -> str:
    return f"{prefix}presence:{user_id}"


def seen_key(prefix: str, user_id: str) -> str:
    return f"{prefix}seen:{user_id}"


def message_json(message_id: str, conversation_id: str, sender: str, body: str, send_time: str,
                 client_message_id: str, members: Sequence[str]) -> dict[str, Any]:
    """A message as the gateway shows it (HTTP and WebSocket alike)."""
    return {"message_id": message_id, "conversation_id": conversation_id, "sender_user_id": sender,
            "body": body, "sent_at": send_time, "client_message_id": client_message_id,
            "member_user_ids": list(members)}


def decode_frame(data: Any) -> dict[str, Any] | None:
    """A frame as published on a user's channel (JSON), or None when it is malformed."""
    try:
        frame = json.loads(data)
    except (TypeError, ValueError):
        return None
    return frame if isinstance(frame, dict) else None


def online_from(fields: dict[Any, Any], now_ms: int) -> tuple[bool, int]:
    """(whether any connection is alive, the latest expiry in epoch ms) of a presence hash (pure)."""
    latest = 0
    for value in fields.values():
        try:
            latest = max(latest, int(value))
        except (TypeError, ValueError):
            continue
    return latest > now_ms, latest


def redis_client(redis_url: str, max_connections: int = 32) -> aioredis.Redis:
    """A client whose callers wait for a free connection (up to 5 s) rather than fail when many
    requests come at once (the default pool refuses with "Too many connections")."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=5,
                                                    socket_timeout=3, socket_connect_timeout=2)
    return aioredis.Redis(connection_pool=pool)


class LivePublisher:
    """Publishes frames to users' channels. Concurrent publishes are coalesced: one task sends
    everything queued in one pipelined round trip, in the order it was queued (so one sender's
    frames keep their order), and each caller waits for its own frame's round trip."""

    def __init__(self, redis_url: str, prefix: str, *, max_batch: int = 512) -> None:
        self.client = redis_client(redis_url, 4)
        self.prefix = prefix
        self.max_batch = max_batch
        self._queue: list[tuple[list[str], str, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def publish(self, users: Iterable[str], frame: dict[str, Any]) -> bool:
        """Best effort: False (and a warning) when Redis is away; the message is stored regardless."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._flush_forever())
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(([user_channel(self.prefix, u) for u in users], json.dumps(frame), done))
        self._wake.set()
        return await done

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                ok = True
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channels, data, _ in batch:
                            for channel in channels:
                                pipe.publish(channel, data)
                        await pipe.execute()
                except Exception as exc:  # noqa: BLE001 - live delivery is best effort: clients catch up
                    log.warning("chat: could not publish %d live frames (%s); clients catch up from history",
                                len(batch), exc)
                    ok = False
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(ok)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()


class UserSubscription:
    """One user's channel on a connection of its own (one per gRPC stream): `open()` returns once Redis
    confirmed the subscription, `next_frame()` waits for the next frame, `close()` frees the
    connection. A lost or half-open connection (no pong within 3 s after 5 s of silence) raises
    ConnectionError from next_frame: the caller ends its stream and its client catches up."""

    def __init__(self, redis_url: str, prefix: str, user_id: str) -> None:
        self.channel = user_channel(prefix, user_id)
        self.client = aioredis.from_url(redis_url, socket_connect_timeout=2)
        self.pubsub = self.client.pubsub()
        self._idle = 0.0

    async def open(self, within: float = 5.0) -> None:
        try:
            await self.pubsub.subscribe(self.channel)
            async with asyncio.timeout(within):
                while True:
                    item = await self.pubsub.get_message(ignore_subscribe_messages=False, timeout=within)
                    if item is not None and item.get("type") == "subscribe":
                        return
        except (TimeoutError, aioredis.RedisError, OSError) as exc:
            raise ConnectionError(f"could not subscribe {self.channel}: {exc!r}") from exc

    async def next_frame(self, within: float = 1.0) -> dict[str, Any] | None:
        """The next frame, or None when none came within `within` seconds (or it was malformed)."""
        try:
            item = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=within)
            if item is None:
                self._idle += within
                if self._idle >= 5.0:
                    await asyncio.wait_for(self.pubsub.ping(), 3.0)
                    self._idle = 0.0
                return None
        except (TimeoutError, aioredis.RedisError, OSError) as exc:
            raise ConnectionError(f"lost {self.channel}: {exc!r}") from exc
        self._idle = 0.0
        if item.get("type") != "message":
            return None
        frame = decode_frame(item.get("data"))
        if frame is None:
            log.warning("chat: ignoring a malformed frame on %s", self.channel)
        return frame

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


class Presence:
    """Presence reads and writes (the gateway writes, api-read's GetPresence reads)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def refresh(self, entries: Sequence[tuple[str, str]], ttl_seconds: float) -> None:
        """Mark (user, connection) pairs alive for `ttl_seconds` from now."""
        now_ms = int(time.time() * 1000)
        until = now_ms + int(ttl_seconds * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for user, conn in entries:
                key = presence_key(self.prefix, user)
                pipe.hset(key, conn, until)
                pipe.pexpire(key, int(ttl_seconds * 1000) + 1000)
                pipe.set(seen_key(self.prefix, user), now_ms, ex=SEEN_TTL_SECONDS)
            await pipe.execute()

    async def leave(self, user: str, conn: str) -> None:
        await self.client.hdel(presence_key(self.prefix, user), conn)

    async def get(self, users: Sequence[str]) -> list[tuple[bool, int, int]]:
        """(online, expire ms, last seen ms) per user, in order."""
        async with self.client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hgetall(presence_key(self.prefix, user))
                pipe.get(seen_key(self.prefix, user))
            replies = await pipe.execute()
        now_ms = int(time.time() * 1000)
        out = []
        for i in range(len(users)):
            online, latest = online_from(replies[2 * i] or {}, now_ms)
            seen = replies[2 * i + 1]
            out.append((online, latest if online else 0, int(seen) if seen else 0))
        return out
