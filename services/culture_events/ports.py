"""The two ports every backend implements, plus optional abilities checked at run time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from culture_events.message import Message


@runtime_checkable
class Publisher(Protocol):
    """Publishes messages to a topic. Returns once the backend has durably accepted them."""

    async def publish(self, topic: str, *messages: Message) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class Subscriber(Protocol):
    """Yields a topic's messages. Which consumer group it belongs to is the subscriber's own config.

    Every yielded message must be acked or nacked; a nacked message is delivered again. Closing
    ends every open iteration after in-flight messages are settled.
    """

    def subscribe(self, topic: str) -> AsyncIterator[Message]: ...

    async def close(self) -> None: ...


@runtime_checkable
class TopicCreator(Protocol):
    """Optional ability: create a topic ahead of use (idempotent)."""

    async def create_topic(self, topic: str, partitions: int = 1) -> None: ...
