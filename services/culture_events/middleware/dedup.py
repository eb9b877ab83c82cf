"""Deduplicator: idempotent consumers. A message whose id this handler already processed is acked
without running the handler again.

The id is recorded once the message is ACKED (after the router published the handler's outputs), so
a failure anywhere before that leaves it unrecorded and the redelivery is processed. Stores: Redis
(`culture_events.backends.redis.RedisProcessedStore`, SET NX with a TTL), PostgreSQL
(`culture_events.backends.postgres.PostgresProcessedStore`) and `MemoryProcessedStore` here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from culture_events import handling
from culture_events.handling import Handler
from culture_events.message import Message, Settlement

log = logging.getLogger(__name__)


@runtime_checkable
class ProcessedStore(Protocol):
    """Remembers processed message keys for a while (the TTL is the store's)."""

    async def seen(self, key: str) -> bool: ...

    async def mark(self, key: str) -> None: ...


class MemoryProcessedStore:
    """A processed-id store in this process's memory, with a TTL (tests, single-process runs)."""

    def __init__(self, ttl: float = 7 * 24 * 3600, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._expiry: dict[str, float] = {}

    async def seen(self, key: str) -> bool:
        """Whether `key` was marked and has not expired."""
        expiry = self._expiry.get(key)
        if expiry is not None and expiry <= self.clock():
            del self._expiry[key]
            return False
        return expiry is not None

    async def mark(self, key: str) -> None:
        """Remember `key` for the TTL (the first mark wins, like SET NX)."""
        if not await self.seen(key):
            self._expiry[key] = self.clock() + self.ttl


class Deduplicator:
    """Skip messages already processed by this handler; `key(msg)` defaults to the message id."""

    def __init__(self, store: ProcessedStore, key: Callable[[Message], str] = lambda m: m.id) -> None:
        self.store = store
        self.key = key
        self._marking: set[asyncio.Task[None]] = set()

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            key = f"{handling.current().handler}:{self.key(msg)}"
            if await self.store.seen(key):
                log.info("duplicate %s skipped", key)
                return []
            outputs = await next_handler(msg)
            msg.on_settled(lambda state: self._mark_later(key) if state is Settlement.ACKED else None)
            return outputs

        return handle

    def _mark_later(self, key: str) -> None:
        task = asyncio.get_running_loop().create_task(self._mark(key))
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _mark(self, key: str) -> None:
        try:
            await self.store.mark(key)
        except Exception as exc:  # noqa: BLE001 - the message is already handled; at worst it is seen twice
            log.warning("could not record %s as processed: %r", key, exc)

    async def flush(self) -> None:
        """Wait until every pending mark reached the store."""
        while self._marking:
            await asyncio.gather(*list(self._marking))
