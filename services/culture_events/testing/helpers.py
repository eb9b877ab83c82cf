"""Small async helpers for event tests: wait for a condition, collect a subscription."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from culture_events.message import Message
from culture_events.ports import Subscriber, TopicCreator
from culture_events.testing.features import Backend


async def wait_until(check: Callable[[], Any], within: float, what: str = "condition", *,
                     interval: float = 0.02, diagnose: Callable[[], str] | None = None,
                     ignore: tuple[type[Exception], ...] = ()) -> Any:
    """Poll `check` (a function returning a value or an awaitable) until its result is truthy, and
    return that result. After `within` seconds: AssertionError naming `what`, the last result and,
    with `diagnose`, its text. Exceptions of the `ignore` types count as "not yet".

    The one way the tests wait (no fixed sleeps); `wait_until_sync` is the same for blocking code.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(what, within, last, diagnose))
        await asyncio.sleep(interval)


def wait_until_sync(check: Callable[[], Any], within: float, what: str = "condition", *,
                    interval: float = 0.25, diagnose: Callable[[], str] | None = None,
                    ignore: tuple[type[Exception], ...] = ()) -> Any:
    """`wait_until` for blocking code (kubectl, a sync client): polls `check` with time.sleep."""
    deadline = time.monotonic() + within
    while True:
        try:
            last = check()
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(what, within, last, diagnose))
        time.sleep(interval)


def _timed_out(what: str, within: float, last: Any, diagnose: Callable[[], str] | None) -> str:
    text = f"timed out after {within:.0f}s waiting for {what} (last: {last!r:.500})"
    return f"{text}\n{diagnose()}" if diagnose is not None else text


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
