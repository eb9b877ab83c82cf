"""The poison topic of a consumer group, read and replayed (`culture events poison ...`).

A worker's PoisonQueue publishes what its handlers gave up on to `<group>.poison`, each record with
the original event id, payload and headers plus why and where it failed (PoisonMeta). `read` lists
them without joining a group (nothing is committed, nothing is taken from anyone); `replay`
publishes each chosen record's original message back to the topic it came from, under its original
event id, so a handler behind a Deduplicator processes it at most once however often it is replayed.
When one event was poisoned several times (replayed and failed again), only its latest record is
replayed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from culture_events.backends.kafka import KafkaPublisher, from_record
from culture_events.errors import BackendError
from culture_events.message import Message
from culture_events.middleware.poison import PoisonMeta, restored


def poison_topic(group: str) -> str:
    """The poison topic of a consumer group (culture_runtime's workers: `<group>.poison`)."""
    return f"{group}.poison"


@dataclasses.dataclass(frozen=True)
class PoisonRecord:
    """One record of a poison topic: where it sits there, and the poisoned message."""

    partition: int
    offset: int
    message: Message

    @property
    def event_id(self) -> str:
        return self.message.metadata.get(PoisonMeta.ORIGINAL_ID) or self.message.id

    def field(self, key: str) -> str:
        return self.message.metadata.get(key, "")


async def read(bootstrap: str, topic: str, *, within: float = 30.0) -> list[PoisonRecord]:
    """Every record of `topic` up to its end offsets when called, oldest first per partition.

    No consumer group: nothing is committed and no worker's assignment changes."""
    numbers = await _partitions(bootstrap, topic)
    if not numbers:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="culture-events-poison")
    try:
        await consumer.start()
    except KafkaError as exc:
        raise BackendError(f"cannot reach Kafka at {bootstrap} ({exc})") from exc
    try:
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        # explicit offsets: seek_to_beginning() is lazy and may lose to the consumer's initial reset
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp])
        records: list[PoisonRecord] = []
        remaining = {tp for tp in partitions if end[tp] > start[tp]}

        async def drain() -> None:
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, recs in batch.items():
                    for rec in recs:
                        if rec.offset < end[tp]:
                            records.append(PoisonRecord(tp.partition, rec.offset, from_record(rec)))
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)

        try:
            await asyncio.wait_for(drain(), within)
        except TimeoutError as exc:
            raise BackendError(f"reading {topic} took longer than {within:.0f}s "
                               f"({len(records)} records read)") from exc
        return sorted(records, key=lambda r: (r.field(PoisonMeta.POISONED_AT), r.partition, r.offset))
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of `topic` ([] when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="culture-events-poison")
    try:
        await admin.start()
    except KafkaError as exc:
        raise BackendError(f"cannot reach Kafka at {bootstrap} ({exc})") from exc
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0:
            return sorted(p["partition"] for p in entry.get("partitions", ()))
    return []


def latest_per_event(records: Iterable[PoisonRecord]) -> dict[str, PoisonRecord]:
    """The latest record of each event id (records in the order `read` returns them)."""
    latest: dict[str, PoisonRecord] = {}
    for record in records:
        latest[record.event_id] = record
    return latest


def choose(records: Sequence[PoisonRecord], ids: Sequence[str] | None) -> list[PoisonRecord]:
    """The records to replay: the latest of each event id, only `ids` when given (KeyError naming
    ids that are not in the topic)."""
    latest = latest_per_event(records)
    if ids is None:
        return list(latest.values())
    unknown = [i for i in ids if i not in latest]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [latest[i] for i in dict.fromkeys(ids)]


async def replay(bootstrap: str, chosen: Sequence[PoisonRecord]) -> list[tuple[str, str]]:
    """Publish each record's original message to its source topic; (event id, topic) of each."""
    publisher = KafkaPublisher(bootstrap, client_id="culture-events-poison-replay")
    done: list[tuple[str, str]] = []
    try:
        for record in chosen:
            topic, original = restored(record.message)
            await publisher.publish(topic, original)
            done.append((original.id, topic))
    finally:
        await publisher.close()
    return done
