"""Small async helpers for event tests: wait for a condition, collect a subscription."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from culture_events.message import Message
from culture_events.ports import Subscriber, TopicCreator
from culture_events.testing.features import Backend


async def wait_until(condition: Callable[[], bool], within: float, what: str = "condition") -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


async def prepare_topic(backend: Backend, topic: str) -> None:
    """Create the topic with the backend's partition count when its publisher can create topics."""
    publisher = backend.publisher()
    try:
        if isinstance(publisher, TopicCreator):
            await publisher.create_topic(topic, backend.features.partitions)
    finally:
        await publisher.close()


class Collector:
    """Consumes a subscription in a background task, records each message and settles it.

    `decide(msg)` returns True to ack, False to nack (default: ack everything).
    """

    def __init__(self, subscriber: Subscriber, topic: str,
                 decide: Callable[[Message], bool | Awaitable[bool]] | None = None) -> None:
        self.subscriber = subscriber
        self.received: list[Message] = []
        self.acked: list[Message] = []
        self.error: BaseException | None = None
        self._decide = decide
        self.task = asyncio.create_task(self._run(topic))

    async def _run(self, topic: str) -> None:
        try:
            async for msg in self.subscriber.subscribe(topic):
                self.received.append(msg)
                verdict = self._decide(msg) if self._decide else True
                if not isinstance(verdict, bool):
                    verdict = await verdict
                if verdict:
                    msg.ack()
                    self.acked.append(msg)
                else:
                    msg.nack()
        except Exception as exc:  # surfaced by wait()/stop(): a scenario must see backend errors
            self.error = exc
            raise

    def payloads(self) -> list[bytes]:
        """Payloads of the acked messages, in delivery order."""
        return [m.payload for m in self.acked]

    async def wait(self, count: int, within: float) -> None:
        """Wait until `count` messages were acked."""
        def done() -> bool:
            if self.error is not None:
                raise AssertionError(f"subscription failed: {self.error!r}") from self.error
            return len(self.acked) >= count
        await wait_until(done, within, f"{count} acked messages (have {len(self.acked)})")

    async def stop(self, within: float = 30.0) -> None:
        """Close the subscriber and wait for the consuming task to end."""
        await self.subscriber.close()
        try:
            async with asyncio.timeout(within):
                with contextlib.suppress(asyncio.CancelledError):
                    await self.task
        except TimeoutError:
            self.task.cancel()
            raise AssertionError("the subscription did not end after close()") from None
