"""The Redis Streams backend: the ONLY module of the library that imports redis.

A topic is a stream (`<prefix><topic>`), a consumer group is a stream consumer group, each
`subscribe()` call is one named consumer in it. New messages come from XREADGROUP `>`; an ack is an
XACK. A nacked message stays in the consumer's pending list and is taken back at once with XCLAIM
and delivered again; messages a dead consumer left pending for longer than `claim_idle_ms` are taken
over with XAUTOCLAIM. Redis Streams have no partitions, so the order per key holds only while one
consumer reads a group (features: ordering_per_key=False).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from culture_events import correlation
from culture_events.backends._signal import Signal
from culture_events.errors import BackendError, ClosedError
from culture_events.message import Message, Settlement

log = logging.getLogger(__name__)



def to_fields(msg: Message) -> dict[str, bytes]:
    """The stream entry of a message: id, JSON metadata, payload."""
    return {"id": msg.id.encode(), "metadata": json.dumps(msg.metadata).encode(), "payload": msg.payload}


def from_fields(entry_id: bytes, fields: dict[bytes, bytes]) -> Message:
    """A Message from a stream entry; foreign entries (other fields) keep their fields as metadata."""
    if b"payload" not in fields:
        meta = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        return Message(b"", meta, id=entry_id.decode())
    metadata = json.loads(fields.get(b"metadata", b"{}"))
    return Message(fields[b"payload"], metadata, id=fields.get(b"id", entry_id).decode())


def _unreachable(url: str, exc: BaseException) -> BackendError:
    return BackendError(f"cannot reach Redis at {url} ({exc}); is it running? "
                        "Locally: `culture stack up redis`")


class RedisPublisher:
    """XADDs messages to `<prefix><topic>` streams (optionally capped with an approximate MAXLEN)."""

    def __init__(self, url: str, *, prefix: str = "events:", maxlen: int | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self._redis = aioredis.Redis.from_url(url)
        self._closed = False

    async def publish(self, topic: str, *messages: Message) -> None:
        """Append the messages in one pipeline; returns once Redis has them."""
        if self._closed:
            raise ClosedError("RedisPublisher is closed; create a new one")
        stream = self.prefix + topic
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for msg in messages:
                    correlation.stamp(msg)
                    pipe.xadd(stream, to_fields(msg), maxlen=self.maxlen, approximate=True)
                await pipe.execute()
        except RedisConnectionError as exc:
            raise _unreachable(self.url, exc) from exc

    async def close(self) -> None:
        """Release the connection pool."""
        if not self._closed:
            self._closed = True
            await self._redis.aclose()


class _Consumer:
    """One named consumer of the group on one stream."""

    def __init__(self, owner: RedisSubscriber, topic: str) -> None:
        self.owner = owner
        self.stream = owner.prefix + topic
        self.name = f"{owner.consumer}-{uuid.uuid4().hex[:8]}"
        self.in_flight: set[bytes] = set()
        self.to_ack: list[bytes] = []
        self.to_redeliver: list[bytes] = []
        self.signal = Signal()
        self.last_claim = 0.0
        self.finished = False

    async def _ensure_group(self) -> None:
        try:
            await self.owner._redis.xgroup_create(self.stream, self.owner.group, id=self.owner.start_id,
                                                  mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except RedisConnectionError as exc:
            raise _unreachable(self.owner.url, exc) from exc

    def _hand_out(self, entry_id: bytes, fields: dict[bytes, bytes]) -> Message:
        msg = from_fields(entry_id, fields)
        self.in_flight.add(entry_id)
        self.owner._in_flight += 1

        def settled(state: Settlement) -> None:
            self.in_flight.discard(entry_id)
            self.owner._in_flight -= 1
            (self.to_ack if state is Settlement.ACKED else self.to_redeliver).append(entry_id)
            self.signal.notify()

        msg.on_settled(settled)
        return msg

    async def flush_acks(self) -> None:
        """XACK what was acked since the last flush."""
        if self.to_ack:
            ids = list(self.to_ack)
            await self.owner._redis.xack(self.stream, self.owner.group, *ids)
            # dropped only once done: a concurrent close() flushes them again (XACK is idempotent)
            done = set(ids)
            self.to_ack = [i for i in self.to_ack if i not in done]

    async def _claim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Nacked entries (at once), then entries abandoned by other consumers (every claim interval)."""
        r, group = self.owner._redis, self.owner.group
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        if self.to_redeliver:
            ids, self.to_redeliver = self.to_redeliver, []
            claimed = await r.xclaim(self.stream, group, self.name, min_idle_time=0, message_ids=ids)
            by_id = {eid: f for eid, f in claimed if f}
            entries += [(eid, by_id[eid]) for eid in ids if eid in by_id]  # keep the nack order
        now = time.monotonic()
        if now - self.last_claim >= self.owner.claim_idle_ms / 2000:
            self.last_claim = now
            _next, claimed, *_deleted = await r.xautoclaim(
                self.stream, group, self.name, min_idle_time=self.owner.claim_idle_ms, start_id="0-0",
                count=100)
            entries += [(eid, f) for eid, f in claimed if f and eid not in self.in_flight]
        return entries

    async def _read(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """New entries, blocking up to block_ms; cut short by close()."""
        count = max(1, self.owner.max_in_flight - len(self.in_flight))
        read = asyncio.ensure_future(self.owner._redis.xreadgroup(
            self.owner.group, self.name, {self.stream: ">"}, count=count, block=self.owner.block_ms))
        closing = asyncio.ensure_future(self.owner._closing.wait())
        try:
            await asyncio.wait({read, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await read
            return []
        return [entry for _stream, entries in (read.result() or []) for entry in entries]

    async def messages(self) -> AsyncIterator[Message]:
        await self._ensure_group()
        try:
            while not self.owner._closing.is_set():
                try:
                    await self.flush_acks()
                    if len(self.in_flight) >= self.owner.max_in_flight:
                        await self.signal.wait(0.5)
                        continue
                    entries = await self._claim() or await self._read()
                except RedisConnectionError as exc:
                    if self.owner._closing.is_set():
                        return  # close() disconnected us mid-call; it flushes what is left
                    raise _unreachable(self.owner.url, exc) from exc
                for entry_id, fields in entries:
                    if self.owner._closing.is_set():
                        # not handed out: still pending for us; redelivered by XAUTOCLAIM later
                        break
                    yield self._hand_out(entry_id, fields)
        finally:
            if self.owner._closing.is_set():
                await self.finish()

    async def finish(self) -> None:
        """Wait for in-flight messages (up to close_timeout) and XACK what was acked (idempotent)."""
        if self.finished:
            return
        self.finished = True
        deadline = time.monotonic() + self.owner.close_timeout
        while self.in_flight and time.monotonic() < deadline:
            await self.signal.wait(0.5)
        if self.in_flight:
            log.warning("redis %s/%s: %d messages unsettled at close; another consumer will claim them",
                        self.owner.group, self.stream, len(self.in_flight))
        with contextlib.suppress(RedisError):
            await self.flush_acks()
            if self.to_redeliver:
                # nacked but not redelivered yet: hand them back for claiming at once, by anyone
                await self.owner._redis.xclaim(self.stream, self.owner.group, self.name, min_idle_time=0,
                                               message_ids=self.to_redeliver, idle=self.owner.claim_idle_ms)
                self.to_redeliver = []


class RedisSubscriber:
    """A member of consumer group `group`: every `subscribe(topic)` is one consumer in that group."""

    def __init__(self, url: str, group: str = "culture", *, consumer: str | None = None,
                 prefix: str = "events:", start_id: str = "0", block_ms: int = 500,
                 claim_idle_ms: int = 30000, max_in_flight: int = 256, close_timeout: float = 30.0) -> None:
        self.url = url
        self.group = group
        self.consumer = consumer or f"c-{uuid.uuid4().hex[:8]}"
        self.prefix = prefix
        #: where a NEW group starts: "0" = the stream's beginning (like Kafka earliest), "$" = new only
        self.start_id = start_id
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_in_flight = max_in_flight
        self.close_timeout = close_timeout
        self._redis = aioredis.Redis.from_url(url)
        self._closing = asyncio.Event()
        self._in_flight = 0
        self._consumers: list[_Consumer] = []

    async def subscribe(self, topic: str) -> AsyncIterator[Message]:
        """Yield the topic's messages for this group (created at the stream's start if new)."""
        if self._closing.is_set():
            raise ClosedError(f"RedisSubscriber(group={self.group!r}) is closed")
        consumer = _Consumer(self, topic)
        self._consumers.append(consumer)
        async for msg in consumer.messages():
            yield msg

    async def close(self) -> None:
        """Stop reading, wait for in-flight messages (up to close_timeout), XACK them, disconnect."""
        if self._closing.is_set():
            return
        self._closing.set()
        await asyncio.gather(*(c.finish() for c in self._consumers))
        await self._redis.aclose()


class RedisProcessedStore:
    """Deduplicator store in Redis: `SET <prefix><key> 1 NX EX <ttl>`, `EXISTS` to check."""

    def __init__(self, url: str, *, prefix: str = "processed:",
                 ttl: int = 7 * 24 * 3600) -> None:
        self.prefix = prefix
        self.ttl = ttl
        self._redis = aioredis.Redis.from_url(url)

    async def seen(self, key: str) -> bool:
        """Whether the key was marked within the TTL."""
        return bool(await self._redis.exists(self.prefix + key))

    async def mark(self, key: str) -> None:
        """Record the key for the TTL; the first mark wins."""
        await self._redis.set(self.prefix + key, b"1", nx=True, ex=self.ttl)

    async def close(self) -> None:
        """Release the connection pool."""
        await self._redis.aclose()
