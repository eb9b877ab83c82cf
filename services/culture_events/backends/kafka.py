"""The Kafka backend (aiokafka): the ONLY module of the library that imports aiokafka.

Publisher: an idempotent producer with acks=all; the partition key is the Kafka message key, the
message id and metadata travel as headers. Subscriber: one consumer per `subscribe()` call in the
subscriber's consumer group, auto-commit off. Messages of a partition are handed out concurrently;
an offset is committed only once it and every offset before it were acked (PartitionTracker); a
nack seeks the partition back to the nacked offset. Before a partition is taken away in a
rebalance, and on close, in-flight messages are waited for and the acked offsets committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaConnectionError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from culture_events import correlation
from culture_events.backends._signal import Signal
from culture_events.backends.offsets import PartitionTracker
from culture_events.errors import BackendError, ClosedError
from culture_events.message import Message, Meta, Settlement

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
_TOPIC_ALREADY_EXISTS = 36


def to_headers(msg: Message) -> list[tuple[str, bytes]]:
    """Kafka headers of a message: its metadata plus the message id as `event_id`."""
    headers = {**msg.metadata, Meta.EVENT_ID: msg.id}
    return [(k, v.encode()) for k, v in headers.items()]


def from_record(record: ConsumerRecord) -> Message:
    """A Message from a consumed record; records without an event_id header get a stable id."""
    metadata = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    msg_id = metadata.get(Meta.EVENT_ID) or f"{record.topic}-{record.partition}-{record.offset}"
    if record.key is not None and Meta.PARTITION_KEY not in metadata:
        metadata[Meta.PARTITION_KEY] = record.key.decode(errors="replace")
    return Message(record.value or b"", metadata, id=msg_id)


def _unreachable(bootstrap: str, exc: BaseException) -> BackendError:
    return BackendError(f"cannot reach Kafka at {bootstrap} ({exc}); is it running? "
                        "Locally: `culture stack up kafka`")


class KafkaPublisher:
    """Publishes to Kafka with acks=all and idempotence; also a TopicCreator (admin client)."""

    def __init__(self, bootstrap_servers: str = DEFAULT_BOOTSTRAP, *, client_id: str = "culture-events",
                 linger_ms: int = 5, request_timeout_ms: int = 30000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer_config = dict(
            bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=linger_ms, request_timeout_ms=request_timeout_ms)
        # made on first publish: a publisher used only to create topics never opens a producer
        self._producer: AIOKafkaProducer | None = None
        self._client_id = client_id
        self._started = False
        self._closed = False
        self._lock = asyncio.Lock()

    async def _start(self) -> None:
        async with self._lock:
            if not self._started:
                producer = AIOKafkaProducer(**self._producer_config)
                try:
                    await producer.start()
                except KafkaConnectionError as exc:
                    await producer.stop()
                    raise _unreachable(self.bootstrap_servers, exc) from exc
                self._producer = producer
                self._started = True

    async def publish(self, topic: str, *messages: Message) -> None:
        """Send the messages (batched) and return once the brokers acknowledged every one of them."""
        if self._closed:
            raise ClosedError("KafkaPublisher is closed; create a new one")
        await self._start()
        assert self._producer is not None
        futures = []
        for msg in messages:
            correlation.stamp(msg)
            key = msg.key.encode() if msg.key is not None else None
            futures.append(await self._producer.send(topic, msg.payload, key=key, headers=to_headers(msg)))
        try:
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BackendError(f"publishing to Kafka topic {topic!r} failed: {exc}") from exc

    async def create_topic(self, topic: str, partitions: int = 1, replication_factor: int = 1) -> None:
        """Create the topic through the admin client; a topic that already exists is fine."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=self._client_id)
        try:
            await admin.start()
        except KafkaConnectionError as exc:
            raise _unreachable(self.bootstrap_servers, exc) from exc
        try:
            response = await admin.create_topics([NewTopic(topic, partitions, replication_factor)])
            for err in response.topic_errors:
                name, code = err[0], err[1]
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise BackendError(f"creating Kafka topic {name!r} failed: error code {code} {err[2:]}")
        finally:
            await admin.close()

    async def close(self) -> None:
        """Flush what is pending and stop the producer."""
        if not self._closed:
            self._closed = True
            if self._producer is not None:
                await self._producer.stop()


class _Subscription(ConsumerRebalanceListener):
    """One consumer on one topic: its partitions' trackers, the fetch loop and the commits."""

    def __init__(self, owner: KafkaSubscriber, topic: str) -> None:
        self.owner = owner
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=owner.bootstrap_servers, group_id=owner.group, client_id=owner.client_id,
            enable_auto_commit=False, auto_offset_reset=owner.auto_offset_reset,
            session_timeout_ms=owner.session_timeout_ms, heartbeat_interval_ms=owner.session_timeout_ms // 3)
        self.trackers: dict[TopicPartition, PartitionTracker] = {}
        self.in_flight = 0
        self.signal = Signal()
        self.finished = False

    # rebalance listener: called by aiokafka inside getmany()
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Let the in-flight messages of the lost partitions finish, commit them, forget them."""
        leaving = [tp for tp in revoked if tp in self.trackers]
        await self._drain(leaving, self.owner.close_timeout)
        await self.commit()
        for tp in leaving:
            self.trackers.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Nothing to do: a tracker starts at the first offset read (the committed one)."""

    async def _drain(self, tps: list[TopicPartition], within: float) -> None:
        deadline = time.monotonic() + within
        while any(self.trackers[tp].busy for tp in tps if tp in self.trackers):
            if time.monotonic() >= deadline:
                log.warning("kafka %s/%s: in-flight messages not settled within %.0fs",
                            self.owner.group, self.topic, within)
                return
            await self.signal.wait(0.5)

    async def commit(self) -> None:
        """Commit every partition whose contiguous acked run moved since the last commit."""
        offsets = {}
        for tp, tracker in self.trackers.items():
            committed = tracker.take_commit()
            if committed is not None:
                offsets[tp] = OffsetAndMetadata(committed, "")
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance under way: the new owner re-reads from the last commit
                log.warning("kafka %s/%s: commit failed (%s); messages may be redelivered",
                            self.owner.group, self.topic, exc)

    def _apply_rewinds(self) -> None:
        for tp, tracker in self.trackers.items():
            rewind = tracker.take_rewind()
            if rewind is not None:
                with contextlib.suppress(KafkaError):  # partition no longer assigned
                    self.consumer.seek(tp, rewind)

    def _hand_out(self, tp: TopicPartition, tracker: PartitionTracker, record: ConsumerRecord) -> Message:
        msg = from_record(record)
        offset = record.offset
        tracker.delivered(offset)
        self.in_flight += 1
        self.owner._in_flight += 1

        def settled(state: Settlement) -> None:
            self.in_flight -= 1
            self.owner._in_flight -= 1
            (tracker.ack if state is Settlement.ACKED else tracker.nack)(offset)
            self.signal.notify()

        msg.on_settled(settled)
        return msg

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One getmany(), cut short by close()."""
        limit = max(1, self.owner.max_in_flight - self.in_flight)
        fetch = asyncio.ensure_future(self.consumer.getmany(timeout_ms=500, max_records=limit))
        closing = asyncio.ensure_future(self.owner._closing.wait())
        try:
            await asyncio.wait({fetch, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConsumerStoppedError):
                await fetch
            return {}
        return fetch.result()

    async def messages(self) -> AsyncIterator[Message]:
        try:
            await self.consumer.start()
        except KafkaConnectionError as exc:
            raise _unreachable(self.owner.bootstrap_servers, exc) from exc
        self.consumer.subscribe([self.topic], listener=self)
        try:
            while not self.owner._closing.is_set():
                await self.commit()
                self._apply_rewinds()
                if self.in_flight >= self.owner.max_in_flight:
                    await self.signal.wait(0.5)
                    continue
                try:
                    batch = await self._fetch()
                except ConsumerStoppedError:
                    return
                for tp, records in batch.items():
                    for record in records:
                        tracker = self.trackers.get(tp)
                        if tracker is None:
                            tracker = self.trackers[tp] = PartitionTracker(record.offset)
                        # a nack or a revocation since this batch was fetched: the rest is stale
                        if tracker.rewind_to is not None or self.owner._closing.is_set():
                            break
                        if tracker.should_deliver(record.offset):
                            yield self._hand_out(tp, tracker, record)
                            if self.trackers.get(tp) is not tracker:
                                break
        finally:
            if self.owner._closing.is_set():
                await self.finish()

    async def finish(self) -> None:
        """Commit what was acked and leave the group (idempotent)."""
        if self.finished:
            return
        self.finished = True
        await self._drain(list(self.trackers), self.owner.close_timeout)
        await self.commit()
        with contextlib.suppress(KafkaError):
            await self.consumer.stop()


class KafkaSubscriber:
    """A member of consumer group `group`; each `subscribe(topic)` runs its own consumer."""

    def __init__(self, bootstrap_servers: str = DEFAULT_BOOTSTRAP, group: str = "culture", *,
                 client_id: str = "culture-events", auto_offset_reset: str = "earliest",
                 max_in_flight: int = 256, close_timeout: float = 30.0,
                 session_timeout_ms: int = 10000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self.client_id = client_id
        self.auto_offset_reset = auto_offset_reset
        self.max_in_flight = max_in_flight
        self.close_timeout = close_timeout
        self.session_timeout_ms = session_timeout_ms
        self._closing = asyncio.Event()
        self._in_flight = 0
        self._subscriptions: list[_Subscription] = []

    async def subscribe(self, topic: str) -> AsyncIterator[Message]:
        """Yield the topic's messages for this group, from the group's committed offsets."""
        if self._closing.is_set():
            raise ClosedError(f"KafkaSubscriber(group={self.group!r}) is closed")
        sub = _Subscription(self, topic)
        self._subscriptions.append(sub)
        async for msg in sub.messages():
            yield msg

    async def close(self) -> None:
        """Stop fetching, wait for in-flight messages (up to close_timeout), commit, leave the group."""
        self._closing.set()
        for sub in self._subscriptions:
            sub.signal.notify()
        await asyncio.gather(*(sub.finish() for sub in self._subscriptions))
