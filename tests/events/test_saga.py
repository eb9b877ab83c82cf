"""Saga: a compensation runs on the failure event and publishes its own event (memory backend)."""

from __future__ import annotations

import asyncio

import pytest

from culture_events import Message, Meta
from culture_events.backends.memory import MemoryBroker, MemoryPublisher, MemorySubscriber
from culture_events.middleware import correlation_id
from culture_events.router import Router
from culture_events.saga import Saga
from culture_events.testing import wait_until

pytestmark = pytest.mark.unit


async def test_feed_creation_failed_marks_profile_incomplete() -> None:
    broker = MemoryBroker()
    pub = MemoryPublisher(broker)
    router = Router()
    router.add_middleware(correlation_id)
    incomplete: set[str] = set()

    async def mark_profile_incomplete(msg: Message) -> list[Message]:
        user = msg.key or ""
        incomplete.add(user)
        return [Message(user.encode(), {Meta.PARTITION_KEY: user})]

    saga = Saga("registration", router, MemorySubscriber(broker, "catalog"), pub)
    saga.compensate(on_topic="feed.creation-failed", handler=mark_profile_incomplete,
                    publish_topic="catalog.profile-marked-incomplete")
    assert [c.handler_name for c in saga.compensations] == ["registration.compensate.feed.creation-failed"]
    task = asyncio.create_task(router.run())
    failure = Message(b"", {Meta.PARTITION_KEY: "user-1", Meta.CORRELATION_ID: "job-1"})
    await pub.publish("feed.creation-failed", failure)
    await wait_until(lambda: bool(broker.messages("catalog.profile-marked-incomplete")), 5, "compensation")
    await router.close()
    await task
    [out] = broker.messages("catalog.profile-marked-incomplete")
    assert incomplete == {"user-1"}
    assert out.metadata[Meta.CORRELATION_ID] == "job-1" and out.metadata[Meta.CAUSATION_ID] == failure.id
    with pytest.raises(ValueError, match="needs Saga"):
        Saga("s", Router(), MemorySubscriber(broker, "x")).compensate(
            on_topic="t", handler=mark_profile_incomplete, publish_topic="out")
