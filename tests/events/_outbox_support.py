"""Helpers for the outbox and fault tests: the servers they need and an independent Kafka observer.

The observer reads topics with a raw aiokafka consumer (no consumer group, no library code), so
what the tests count on a topic does not depend on the code under test.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from culture_events.backends.kafka import KafkaPublisher
from culture_stack import registry, stack
from culture_stack.server import Context


@functools.cache
def up(name: str) -> dict[str, Any]:
    """Settings of one stack server, started when down (only it and what it depends on)."""
    servers = registry.select([name])
    stack.up(Context.default(), servers)
    return servers[-1].settings()


def kafka_bootstrap() -> str:
    settings = up("kafka")
    return settings.get("bootstrap_servers") or f"{settings['host']}:{settings['port']}"


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create a topic (auto-creation is off on the stack's broker)."""
    publisher = KafkaPublisher(bootstrap)
    try:
        await publisher.create_topic(topic, partitions)
    finally:
        await publisher.close()


async def _assigned(bootstrap: str, topic: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic)
    deadline = time.monotonic() + 30
    while not partitions:
        if time.monotonic() > deadline:
            await consumer.stop()
            raise AssertionError(f"topic {topic} has no partitions in the metadata")
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return consumer, tps


async def records_on_topic(bootstrap: str, topic: str) -> int:
    """How many records the topic holds: the sum of its partitions' end offsets (log start is 0)."""
    consumer, tps = await _assigned(bootstrap, topic)
    try:
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, within: float = 60.0) -> list[ConsumerRecord]:
    """Every record on the topic right now (up to its current end offsets), partition by partition."""
    consumer, tps = await _assigned(bootstrap, topic)
    try:
        ends = await consumer.end_offsets(tps)
        out: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in tps}
        deadline = time.monotonic() + within
        while any(len(out[tp]) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {sum(map(len, out.values()))} of {sum(ends.values())} records")
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                out[tp].extend(records)
        return [r for tp in tps for r in out[tp]]
    finally:
        await consumer.stop()


def headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in (record.headers or ())}
