"""Poison records keep the event's id and where it was read, and `culture events poison` lists and
replays them; a replay is deduplicated by the original event id."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from culture_events import Message, Meta
from culture_events import poison as poison_topic
from culture_events.backends.kafka import KafkaPublisher, KafkaSubscriber
from culture_events.middleware import MemoryProcessedStore, PoisonMeta, Retry, default_middleware
from culture_events.middleware.poison import poisoned, restored
from culture_events.router import Router
from culture_events.testing import wait_until


@pytest.mark.unit
def test_a_poison_copy_keeps_the_id_and_restores_to_the_original() -> None:
    original = Message(b"x", {Meta.PARTITION_KEY: "k", Meta.CORRELATION_ID: "job-1"})
    copy = poisoned(original, RuntimeError("no"), "h", "t.in")
    assert copy.id == original.id and copy.metadata[PoisonMeta.TOPIC] == "t.in"
    assert PoisonMeta.PARTITION not in copy.metadata  # not read from a broker: no place to name
    topic, back = restored(copy)
    assert (topic, back.id, back.payload, back.metadata) == ("t.in", original.id, b"x", original.metadata)
    with pytest.raises(ValueError, match="source topic"):
        restored(Message(b"x", {}))


@pytest.mark.unit
def test_replay_takes_the_latest_record_of_each_event() -> None:
    def rec(event: str, offset: int) -> poison_topic.PoisonRecord:
        return poison_topic.PoisonRecord(0, offset, Message(b"", {PoisonMeta.ORIGINAL_ID: event}, id=event))

    records = [rec("a", 0), rec("b", 1), rec("a", 2)]
    assert [(r.event_id, r.offset) for r in poison_topic.choose(records, None)] == [("a", 2), ("b", 1)]
    assert [r.offset for r in poison_topic.choose(records, ["b"])] == [1]
    with pytest.raises(KeyError, match="zz"):
        poison_topic.choose(records, ["zz"])


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    culture = Path(sys.executable).with_name("culture")
    return subprocess.run([str(culture), "events", "poison", *argv], capture_output=True, text=True,
                          timeout=120)


async def _record_at(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await asyncio.wait_for(consumer.getone(), 30)
        return bytes(record.value or b"")
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_a_poisoned_event_is_listed_where_it_was_read_and_replays_once(kafka_bootstrap: str,
                                                                             unique: str) -> None:
    source, group = f"{unique}.in", f"{unique}-g"
    broken = True
    handled: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        if broken and msg.payload == b"cursed":
            raise RuntimeError("the mail server refused it")
        handled.append(msg.id)
        return []

    pub = KafkaPublisher(kafka_bootstrap)
    for topic in (source, f"{group}.poison"):
        await pub.create_topic(topic, partitions=3)
    router = Router(concurrency=4)
    router.add_middleware(*default_middleware(
        poison_publisher=pub, poison_topic=f"{group}.poison", dedup_store=MemoryProcessedStore(),
        retry=Retry(max_retries=1, initial_interval=0.01, max_interval=0.05), timeout_seconds=10))
    router.add_consumer_handler("mail", source, KafkaSubscriber(kafka_bootstrap, group), handler)
    task = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(router.running.wait(), 30)
        cursed = Message(b"cursed", {Meta.PARTITION_KEY: "k", Meta.CORRELATION_ID: "job-7"})
        fine = Message(b"fine", {Meta.PARTITION_KEY: "k"})
        await pub.publish(source, cursed, fine)
        await wait_until(lambda: fine.id in handled, 60, "the message after the poisoned one")

        async def poisoned_records() -> list[poison_topic.PoisonRecord] | None:
            found = await poison_topic.read(kafka_bootstrap, f"{group}.poison")
            return found or None

        [record] = await wait_until(poisoned_records, 60, "the poison record")
        meta = record.message.metadata
        assert record.message.id == cursed.id and record.event_id == cursed.id
        assert meta[PoisonMeta.TOPIC] == source and meta[Meta.CORRELATION_ID] == "job-7"
        partition, offset = int(meta[PoisonMeta.PARTITION]), int(meta[PoisonMeta.OFFSET])
        assert await _record_at(kafka_bootstrap, source, partition, offset) == b"cursed"

        listed = await asyncio.to_thread(_cli, "list", group, "--brokers", kafka_bootstrap)
        assert listed.returncode == 0, listed.stderr
        assert f"{cursed.id}  {source}[{partition}]@{offset}  mail  attempts=2" in listed.stdout
        assert "the mail server refused it" in listed.stdout
        shown = await asyncio.to_thread(_cli, "show", group, cursed.id, "--brokers", kafka_bootstrap)
        assert shown.returncode == 0 and f"{PoisonMeta.REASON}: RuntimeError" in shown.stdout
        missing = await asyncio.to_thread(_cli, "replay", group, "--id", "no-such-event",
                                          "--brokers", kafka_bootstrap)
        assert missing.returncode == 1 and "no-such-event" in missing.stderr

        broken = False  # the cause is fixed: replay it
        replayed = await asyncio.to_thread(_cli, "replay", group, "--all", "--brokers", kafka_bootstrap)
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {cursed.id} -> {source}" in replayed.stdout
        await wait_until(lambda: cursed.id in handled, 60, "the replayed event to be handled")

        again = await asyncio.to_thread(_cli, "replay", group, "--id", cursed.id,
                                        "--brokers", kafka_bootstrap)
        assert again.returncode == 0, again.stderr
        marker = Message(b"marker", {Meta.PARTITION_KEY: "k"})  # same key: handled after the replay
        await pub.publish(source, marker)
        await wait_until(lambda: marker.id in handled, 60, "the marker after the second replay")
        assert handled.count(cursed.id) == 1  # the second replay was a duplicate of the first
    finally:
        await router.close()
        await task
        await pub.close()


@pytest.mark.unit
def test_poison_cli_without_brokers_says_so() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "CULTURE_KAFKA_BOOTSTRAP"}
    culture = Path(sys.executable).with_name("culture")
    result = subprocess.run([str(culture), "events", "poison", "list", "g"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2 and "--brokers" in result.stderr
