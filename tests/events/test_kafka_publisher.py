"""KafkaPublisher failures on the real broker: send() errors are BackendErrors, and close(timeout=...)
gives up on sends that a Kafka outage keeps pending forever."""

from __future__ import annotations

import asyncio
import time

import pytest

from culture_events.backends.kafka import KafkaPublisher
from culture_events.errors import BackendError
from culture_events.message import Message, Meta
from culture_events.testing.kafka_proxy import KafkaProxy

pytestmark = pytest.mark.integration


async def test_send_error_is_a_backend_error(kafka_bootstrap: str, unique: str) -> None:
    # auto-creation is off on the stack's broker: no metadata for this topic, so send() itself times out
    pub = KafkaPublisher(kafka_bootstrap, request_timeout_ms=1500)
    try:
        with pytest.raises(BackendError, match=f"{unique}.missing"):
            await asyncio.wait_for(pub.publish(f"{unique}.missing", Message(b"x")), 30)
    finally:
        await pub.close(timeout=10)


async def test_close_with_timeout_gives_up_pending_sends_during_an_outage(kafka_bootstrap: str,
                                                                          unique: str) -> None:
    host, port = kafka_bootstrap.rsplit(":", 1)
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    pub = KafkaPublisher(f"127.0.0.1:{proxy.port}")
    try:
        await pub.create_topic(f"{unique}.out", partitions=1)
        await pub.publish(f"{unique}.out", Message(b"before", {Meta.PARTITION_KEY: "k"}))  # producer up
        await proxy.close()  # Kafka is gone from the publisher's side
        during = Message(b"during", {Meta.PARTITION_KEY: "k"})
        pending = asyncio.create_task(pub.publish(f"{unique}.out", during))
        await asyncio.sleep(0)  # the send is queued in the producer
        assert not pending.done()
        started = time.monotonic()
        await asyncio.wait_for(pub.close(timeout=1.0), 30)
        assert time.monotonic() - started < 15
        with pytest.raises(BackendError, match="closed with sends pending"):  # not confirmed: said so
            await asyncio.wait_for(pending, 10)
    finally:
        await proxy.close()


async def test_close_with_timeout_flushes_when_kafka_is_up(kafka_bootstrap: str, unique: str) -> None:
    pub = KafkaPublisher(kafka_bootstrap)
    await pub.create_topic(f"{unique}.out", partitions=1)
    await pub.publish(f"{unique}.out", Message(b"first"))  # the producer runs
    sending = asyncio.create_task(pub.publish(f"{unique}.out", *[Message(b"m%d" % i) for i in range(50)]))
    await asyncio.sleep(0)
    await pub.close(timeout=30)
    await asyncio.wait_for(sending, 30)  # delivered, not given up
    await pub.close(timeout=1)  # idempotent


async def test_a_topic_created_by_another_client_a_moment_ago_is_published_to(
        kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publisher that asked the brokers for the topic before it existed looks again for a moment
    (a topic another client just created reaches the metadata shortly after its CreateTopics
    returned); a topic that stays missing is refused, with nothing sent."""
    from aiokafka.client import AIOKafkaClient

    from culture_events.errors import PublishRejected
    from culture_events.testing import wait_until

    asked: list[bool] = []
    fetch = AIOKafkaClient.fetch_all_metadata

    async def counted(self: AIOKafkaClient) -> object:
        cluster = await fetch(self)
        asked.append(unique in cluster.topics())
        return cluster

    monkeypatch.setattr(AIOKafkaClient, "fetch_all_metadata", counted)
    publisher = KafkaPublisher(kafka_bootstrap)
    creator = KafkaPublisher(kafka_bootstrap)
    try:
        publisher.topic_grace_seconds = 10.0
        late = asyncio.ensure_future(publisher.publish(unique, Message(b"first", id="m1")))
        await wait_until(lambda: asked and not asked[0], 10, "the publisher to find no such topic")
        assert not late.done()
        await creator.create_topic(unique)
        await asyncio.wait_for(late, 15)
        publisher.topic_grace_seconds = 0.5
        started = time.monotonic()
        with pytest.raises(PublishRejected, match="does not exist") as refused:
            await publisher.publish(f"{unique}-never", Message(b"x", id="m2"))
        assert refused.value.all_refused and time.monotonic() - started >= 0.5
    finally:
        await publisher.close(timeout=5)
        await creator.close(timeout=5)
