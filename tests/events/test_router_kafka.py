"""Faults on real Kafka: a handler that always fails, and an undecodable payload.

Both end on the poison topic with the reason, and the router keeps consuming what follows.
"""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import wrappers_pb2

from culture_events import Message, Meta
from culture_events.backends.kafka import KafkaPublisher, KafkaSubscriber
from culture_events.codec import decode, encode
from culture_events.middleware import PoisonMeta, Retry, default_middleware
from culture_events.router import Router
from culture_events.testing import Collector, wait_until

pytestmark = pytest.mark.integration


async def _run_router(bootstrap: str, unique: str,
                      handler) -> tuple[Router, asyncio.Task[None], KafkaPublisher]:
    pub = KafkaPublisher(bootstrap)
    for topic in (f"{unique}.in", f"{unique}.poison"):
        await pub.create_topic(topic, partitions=3)
    router = Router(concurrency=4)
    router.add_middleware(*default_middleware(
        poison_publisher=pub, poison_topic=f"{unique}.poison",
        retry=Retry(max_retries=3, initial_interval=0.01, max_interval=0.05), timeout_seconds=10))
    router.add_consumer_handler("faulty", f"{unique}.in", KafkaSubscriber(bootstrap, f"{unique}-g"), handler)
    task = asyncio.create_task(router.run())
    await asyncio.wait_for(router.running.wait(), 30)
    return router, task, pub


async def _poisoned(bootstrap: str, unique: str, count: int) -> list[Message]:
    c = Collector(KafkaSubscriber(bootstrap, f"{unique}-poison-reader"), f"{unique}.poison")
    await c.wait(count, 60)
    await c.stop()
    return c.acked


async def test_always_failing_handler_goes_to_poison_and_router_continues(kafka_bootstrap: str,
                                                                          unique: str) -> None:
    attempts: dict[bytes, int] = {}
    handled: list[bytes] = []

    async def handler(msg: Message) -> list[Message]:
        attempts[msg.payload] = attempts.get(msg.payload, 0) + 1
        if msg.payload == b"cursed":
            raise RuntimeError("the catalog rejects this review")
        handled.append(msg.payload)
        return []

    router, task, pub = await _run_router(kafka_bootstrap, unique, handler)
    try:
        cursed = Message(b"cursed", {Meta.PARTITION_KEY: "k", Meta.CORRELATION_ID: "job-9"})
        after = [Message(f"next{i}".encode(), {Meta.PARTITION_KEY: "k"}) for i in range(5)]
        await pub.publish(f"{unique}.in", cursed, *after)
        await wait_until(lambda: len(handled) == 5, 60, "the messages after the failing one")
        assert handled == [m.payload for m in after]  # same key: in order, after the poisoned one
        [poisoned] = await _poisoned(kafka_bootstrap, unique, 1)
        meta = poisoned.metadata
        assert poisoned.payload == b"cursed" and attempts[b"cursed"] == 4
        assert meta[PoisonMeta.REASON] == "RuntimeError: the catalog rejects this review"
        assert meta[PoisonMeta.ATTEMPTS] == "4" and meta[PoisonMeta.HANDLER] == "faulty"
        assert meta[PoisonMeta.TOPIC] == f"{unique}.in" and meta[PoisonMeta.ORIGINAL_ID] == cursed.id
        assert meta[Meta.CORRELATION_ID] == "job-9"
        assert router.is_ready()
    finally:
        await router.close()
        await task
        await pub.close()


async def test_undecodable_payload_goes_to_poison_not_a_crash(kafka_bootstrap: str, unique: str) -> None:
    titles: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        titles.append(decode(msg, wrappers_pb2.StringValue).value)
        return []

    router, task, pub = await _run_router(kafka_bootstrap, unique, handler)
    try:
        garbage = Message(b"\x0a\xff\x01", {Meta.EVENT_TYPE: "google.protobuf.StringValue"})
        good = encode(wrappers_pb2.StringValue(value="Stalker"), key="film-1")
        await pub.publish(f"{unique}.in", garbage, good)
        await wait_until(lambda: titles == ["Stalker"], 60, "the good message")
        [poisoned] = await _poisoned(kafka_bootstrap, unique, 1)
        assert poisoned.metadata[PoisonMeta.ORIGINAL_ID] == garbage.id
        assert poisoned.metadata[PoisonMeta.ATTEMPTS] == "1"  # not retried: UndecodablePayload is permanent
        assert "UndecodablePayload" in poisoned.metadata[PoisonMeta.ERROR_TYPE]
        assert task.done() is False and router.is_ready()
    finally:
        await router.close()
        await task
        await pub.close()
