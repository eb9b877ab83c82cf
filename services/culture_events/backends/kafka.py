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
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ConsumerStoppedError,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from culture_events import correlation
from culture_events.backends._signal import Signal
from culture_events.backends.offsets import PartitionTracker
from culture_events.errors import BackendError, ClosedError, PublishRejected
from culture_events.message import Message, Meta, Settlement

log = logging.getLogger(__name__)

EVENT_ID, PARTITION_KEY = Meta.EVENT_ID, Meta.PARTITION_KEY
_TOPIC_ALREADY_EXISTS = 36
#: the broker (or the producer, before sending) refuses the message itself: sending it again is useless
_REFUSED = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, InvalidTopicError,
            TopicAuthorizationFailedError)


def to_headers(msg: Message) -> list[tuple[str, bytes]]:
    """Kafka headers of a message: its metadata plus the message id as `event_id`."""
    metadata = msg.metadata
    if Meta.EVENT_ID in metadata:  # rare: the header keeps its place, with the message id as value
        return [(k, (msg.id if k == Meta.EVENT_ID else v).encode()) for k, v in metadata.items()]
    headers = [(k, v.encode()) for k, v in metadata.items()]  # no merged dict per message
    headers.append((Meta.EVENT_ID, msg.id.encode()))
    return headers


def from_record(record: ConsumerRecord) -> Message:
    """A Message from a consumed record; records without an event_id header get a stable id.

    (The subscriber inlines the same steps in its fetch loop.)"""
    metadata = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
    msg_id = metadata.get(Meta.EVENT_ID) or f"{record.topic}-{record.partition}-{record.offset}"
    if record.key is not None and Meta.PARTITION_KEY not in metadata:
        metadata[Meta.PARTITION_KEY] = record.key.decode("utf-8", "replace")
    return Message(record.value or b"", metadata, id=msg_id)


class _Delivered(Message):
    """A consumed message that tells its subscription how it was settled.

    Overriding the settlement instead of registering an `on_settled` callback spares a closure, a
    callback list and a call per message; everything else is a plain Message.
    """

    __slots__ = ("_offset", "_subscription", "_tracker")

    def __init__(self, payload: bytes, metadata: dict[str, str], id: str,
                 subscription: _Subscription, tracker: PartitionTracker, offset: int) -> None:
        # Message.__init__ without its copy of the metadata: the fetch loop made this dict for it
        self.id, self.metadata, self.payload = id, metadata, payload
        self._state, self._settled, self._callbacks = Settlement.PENDING, None, None
        self.on_revoke = None
        self._subscription, self._tracker, self._offset = subscription, tracker, offset

    def ack(self) -> bool:
        """Message.ack with the settlement inlined (once per consumed message: the hot path)."""
        if self._state is not Settlement.PENDING:
            return self._state is Settlement.ACKED
        self._state = Settlement.ACKED
        if self._settled is not None:
            self._settled.set()
        if self._callbacks:
            for callback in self._callbacks:
                callback(Settlement.ACKED)
            self._callbacks = None
        # the subscription's bookkeeping of an ack (its `settled`), inlined
        sub = self._subscription
        sub.in_flight -= 1
        self._tracker.ack(self._offset)
        if sub.in_flight <= sub._wake_at or sub._draining:
            sub.signal.notify()
        return True

    def origin(self) -> dict[str, str]:
        """The topic, partition and offset this message was read from."""
        sub = self._subscription
        tp = next((tp for tp, t in sub.trackers.items() if t is self._tracker), None)
        where = {"topic": sub.topic, "offset": str(self._offset)}
        if tp is not None:
            where["partition"] = str(tp.partition)
        return where

    def _settle(self, to: Settlement) -> bool:
        if to is Settlement.ACKED:
            return self.ack()
        pending = self._state is Settlement.PENDING
        done = Message._settle(self, to)
        if pending:
            self._subscription.nacked(self._tracker, self._offset)
        return done


def _unreachable(bootstrap: str, exc: BaseException) -> BackendError:
    return BackendError(f"cannot reach Kafka at {bootstrap} ({exc}); is it running? "
                        "Locally: `culture stack up kafka`")


class KafkaPublisher:
    """Publishes to Kafka with acks=all and idempotence; also a TopicCreator (admin client)."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "culture-events",
                 linger_ms: int = 5, request_timeout_ms: int = 30000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer_config = dict(
            bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=linger_ms, request_timeout_ms=request_timeout_ms)
        # made on first publish: a publisher used only to create topics never opens a producer
        self._producer: AIOKafkaProducer | None = None
        self._client_id = client_id
        self._known_topics: set[str] = set()
        self._started = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._stopping: asyncio.Future[None] | None = None

    async def _start(self) -> None:
        if self._started:  # every publish comes here: no lock once the producer runs
            return
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
        """Send the messages (batched) and return once the brokers acknowledged every one of them.

        PublishRejected when the broker refuses a message itself (too large, the topic does not
        exist, not allowed): the messages before it were published; BackendError for other failures.
        """
        if self._closed:
            raise ClosedError("KafkaPublisher is closed; create a new one")
        await self._start()
        assert self._producer is not None
        if topic not in self._known_topics:
            await self._check_topic(topic)
        send = self._producer.send
        futures = []
        try:
            for i, msg in enumerate(messages):
                correlation.stamp(msg)
                key = msg.key
                raw_key = key.encode() if key is not None else None
                try:
                    futures.append(await send(topic, msg.payload, key=raw_key, headers=to_headers(msg)))
                except _REFUSED as exc:
                    await asyncio.gather(*futures)  # the ones before it
                    raise PublishRejected(f"Kafka refuses message {msg.id} for topic {topic!r}: "
                                          f"{str(exc) or type(exc).__name__}", sent=i) from exc
            # send() itself fails too (no metadata for the topic in time, a closed producer): same error
            results = await asyncio.gather(*futures, return_exceptions=True)
        except KafkaError as exc:
            reason = str(exc) or type(exc).__name__  # aiokafka's timeouts have no message
            raise BackendError(f"publishing to Kafka topic {topic!r} failed: {reason}") from exc
        for i, result in enumerate(results):
            if isinstance(result, _REFUSED):
                raise PublishRejected(f"Kafka refuses message {messages[i].id} for topic {topic!r}: "
                                      f"{str(result) or type(result).__name__}", sent=i) from result
            if isinstance(result, BaseException):
                reason = str(result) or type(result).__name__
                raise BackendError(f"publishing to Kafka topic {topic!r} failed: {reason}") from result

    #: how long a topic the brokers do not list yet is looked for again before a publish is refused: a
    #: topic created a moment ago (by the operator, another client) reaches every broker's metadata
    #: shortly after CreateTopics returns (CI saw a publish right after a create refused)
    topic_grace_seconds = 1.0

    async def _check_topic(self, topic: str) -> None:
        """PublishRejected when the cluster answers and has no such topic (auto-creation is off, so
        a send would wait `request_timeout_ms` for it, then fail), also after `topic_grace_seconds`.
        Unknown (no answer): go on."""
        assert self._producer is not None
        client = self._producer.client

        async def topics() -> set[str] | None:
            cluster = await client.fetch_all_metadata()
            return set(cluster.topics()) if cluster.brokers() else None

        listed = await _wait_until_listed(topics, topic, self.topic_grace_seconds)
        if listed:
            self._known_topics.add(topic)
        elif listed is False:
            raise PublishRejected(f"Kafka topic {topic!r} does not exist (and topics are not created "
                                  "on first use)", all_refused=True)

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

    # a caller's asyncio.timeout() around close() could only abandon the wait, not the producer's
    # batches: the timeout has to be ours
    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Flush what is pending and stop the producer.

        Without `timeout` this waits for every pending send, which during a Kafka outage is forever
        (the idempotent producer never expires its batches). With it, sends still pending after
        `timeout` seconds are failed (their `publish()` raises BackendError: the caller does not
        know whether they reached Kafka) and the producer is stopped without them.
        """
        if self._closed:
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            return
        self._closed = True
        if self._producer is None:
            return
        self._stopping = asyncio.ensure_future(self._producer.stop())
        done, _ = await asyncio.wait({self._stopping}, timeout=timeout)
        if done:
            self._stopping.result()
            return
        log.warning("kafka publisher: sends still pending %.1fs after close(); giving them up", timeout)
        assert timeout is not None  # without one, the wait above does not end before stop()
        await self._abandon_pending(timeout)
        done, _ = await asyncio.wait({self._stopping}, timeout=max(timeout, 1.0))
        if done:
            self._stopping.result()
        else:
            log.warning("kafka publisher: the producer did not stop; leaving it behind")

    async def _abandon_pending(self, waited: float) -> None:
        """Stop the producer's sender, then fail its pending batches (so the publishes waiting for
        them raise, and stop(), which waits for them, goes on to close the connections).

        The order matters: a batch failed while the sender still retries it breaks the sender. This
        reaches into aiokafka's producer (`_sender`, `_message_accumulator`); without them, the
        close only stops waiting.
        """
        sender = getattr(self._producer, "_sender", None)
        accumulator = getattr(self._producer, "_message_accumulator", None)
        task = getattr(sender, "sender_task", None)
        if task is None or accumulator is None:
            return
        task.cancel()  # it lets its in-flight requests finish (at most request_timeout_ms)
        await asyncio.wait({task}, timeout=max(waited, 1.0))
        batches = [*(b for queue in getattr(accumulator, "_batches", {}).values() for b in queue),
                   *getattr(accumulator, "_pending_batches", ())]
        accumulator.fail_all(KafkaTimeoutError(
            f"the publisher was closed with sends pending for {waited}s "
            f"(is Kafka at {self.bootstrap_servers} up?)"))
        for batch in batches:  # nobody waits on a batch's drain waiter any more: no "never retrieved"
            waiter = getattr(batch, "_drain_waiter", None)
            if waiter is not None and waiter.done() and not waiter.cancelled():
                waiter.exception()


def relay_publisher(bootstrap_servers: str, client_id: str) -> KafkaPublisher:
    """The publisher an outbox relay uses: no linger. A relay hands the producer a whole claimed
    batch at once, so waiting for more messages would only add latency to every event."""
    return KafkaPublisher(bootstrap_servers, client_id=client_id, linger_ms=0)


async def _wait_until_listed(topics: Callable[[], Awaitable[set[str] | None]], topic: str, within: float,
                             stop: asyncio.Event | None = None) -> bool | None:
    """Ask `topics()` every 0.2 s until it lists `topic` (True) or `within` seconds have passed (False);
    None when the broker gives no answer (an error, 10 s without a reply, or `topics()` says None), or
    `stop` is set: the caller goes on as it would without asking."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while stop is None or not stop.is_set():
        try:
            listed = await asyncio.wait_for(topics(), 10)
        except (KafkaError, TimeoutError):
            return None
        if listed is None:
            return None
        if topic in listed:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.2)
    return None


class _Subscription(ConsumerRebalanceListener):
    """One consumer on one topic: its partitions' trackers, the fetch loop and the commits.

    The fetch loop reads a batch (getmany), hands its records out, commits the acked offsets once per
    round and fetches again. When `max_in_flight` messages are out it sleeps until half of them are
    settled (or a nack asks for a rewind), so settlements do not wake it message by message and
    the next fetch takes a batch.
    """

    def __init__(self, owner: KafkaSubscriber, topic: str) -> None:
        self.owner = owner
        self.topic = topic
        self.consumer: AIOKafkaConsumer  # made when the iteration starts (messages())
        self.trackers: dict[TopicPartition, PartitionTracker] = {}
        self.in_flight = 0
        self.signal = Signal()
        self.finished = False
        #: fetch again once in_flight is down to this (hysteresis: fetch in batches, not one by one)
        self._low_water = owner.max_in_flight // 2
        #: a settlement leaving in_flight at or below this wakes the fetch loop (-1: it is not waiting)
        self._wake_at = -1
        #: drains in progress (close, revocation): they want to hear of every settlement
        self._draining = 0
        self._closing_waiter: asyncio.Future[bool] | None = None
        #: the commit running in the background, if any (one at a time, so offsets only move forward)
        self._committing: asyncio.Future[bool] | None = None
        #: whether the partitions are paused (every slot busy; see _poll_paused)
        self._paused = False

    # rebalance listener: called by aiokafka inside getmany()
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Before the lost partitions go to another member: take back their messages not handled
        yet, let the running ones finish (up to `revoke_timeout`), cancel what still runs, commit,
        forget them. So two members never handle one message at the same time (the group waits for
        this member up to `rebalance_timeout_ms`, longer than all of this)."""
        leaving = [tp for tp in revoked if tp in self.trackers]
        await self._take_back(leaving, self.owner.revoke_timeout)
        await self.commit_now()
        for tp in leaving:
            self.trackers.pop(tp, None)

    async def _take_back(self, tps: list[TopicPartition], within: float) -> None:
        """Nack the waiting messages of these partitions, wait `within` for the running ones, then
        cancel those (and wait `cancel_grace` for the cancellations to settle them)."""
        self._revoke(tps, running=False)
        if await self._drain(tps, within):
            return
        if self._revoke(tps, running=True):
            log.warning("kafka %s/%s: cancelling handlers still running after %.0fs (partitions %s "
                        "taken away)", self.owner.group, self.topic, within, [tp.partition for tp in tps])
            await self._drain(tps, self.owner.cancel_grace)

    def _revoke(self, tps: list[TopicPartition], *, running: bool) -> int:
        taken = 0
        for tp in tps:
            tracker = self.trackers.get(tp)
            if tracker is not None:
                for msg in list(tracker.in_flight.values()):
                    if msg is not None and msg.revoke(running=running):
                        taken += 1
        return taken
    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Nothing to do: a tracker starts at the first offset read (the committed one)."""

    async def _drain(self, tps: list[TopicPartition], within: float) -> bool:
        """Wait up to `within` seconds for the in-flight messages of `tps`; whether they all settled."""
        deadline = time.monotonic() + within
        self._draining += 1
        try:
            while any(self.trackers[tp].busy for tp in tps if tp in self.trackers):
                if time.monotonic() >= deadline:
                    log.warning("kafka %s/%s: in-flight messages not settled within %.0fs",
                                self.owner.group, self.topic, within)
                    return False
                await self.signal.wait(0.5)
            return True
        finally:
            self._draining -= 1

    def _commit_soon(self) -> None:
        """Commit in the background, so the fetch loop (and the handlers it feeds) do not wait for
        the broker's reply; at most one commit runs at a time."""
        if self._committing is not None and not self._committing.done():
            return
        if any(t.committed != t.reported for t in self.trackers.values()):
            self._committing = asyncio.ensure_future(self.commit())

    async def commit_now(self, attempts: int = 3) -> None:
        """Wait for a background commit, then commit what was acked since (revocation, close); a
        failed commit is tried again (`attempts` in all, 0.2 s apart)."""
        if self._committing is not None:
            with contextlib.suppress(Exception):
                await self._committing
            self._committing = None
        for attempt in range(attempts):
            if await self.commit() or attempt == attempts - 1:
                return
            await asyncio.sleep(0.2)

    async def commit(self) -> bool:
        """Commit every partition whose contiguous acked run moved since the last commit; False when
        the commit failed (then the same offsets are offered again by the next commit)."""
        offsets = {}
        taken: list[tuple[PartitionTracker, int, int]] = []
        for tp, tracker in self.trackers.items():
            previous = tracker.reported
            committed = tracker.take_commit()
            if committed is not None:
                offsets[tp] = OffsetAndMetadata(committed, "")
                taken.append((tracker, committed, previous))
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:
                # offered again next round (a partition revoked meanwhile is forgotten with its tracker;
                # its new owner re-reads from the last successful commit)
                for tracker, committed, previous in taken:
                    tracker.commit_failed(committed, previous)
                log.warning("kafka %s/%s: commit failed (%s); retried with the next commit",
                            self.owner.group, self.topic, exc)
                return False
        return True

    def _apply_rewinds(self) -> None:
        for tp, tracker in self.trackers.items():
            if tracker.rewind_to is None:
                continue
            rewind = tracker.take_rewind()
            if rewind is not None:
                with contextlib.suppress(KafkaError):  # partition no longer assigned
                    self.consumer.seek(tp, rewind)

    def nacked(self, tracker: PartitionTracker, offset: int) -> None:
        """A handed-out message was nacked (called synchronously by the message; acks are counted by
        `_Delivered.ack` itself)."""
        self.in_flight -= 1
        tracker.nack(offset)
        self.signal.notify()  # the fetch loop rewinds at once

    async def _wait_for_room(self) -> None:
        """Sleep until in_flight is down to the low-water mark, a nack, close(), or half a second
        (so a partition with slow handlers still gets its acked offsets committed)."""
        self._wake_at = self._low_water
        try:
            await self.signal.wait(0.5)
        finally:
            self._wake_at = -1

    async def _poll_paused(self) -> None:
        """Every handed-out slot is busy (slow handlers): poll with every partition paused, so the
        member stays in its group (aiokafka leaves it after `max_poll_interval_ms` without a poll)
        and takes part in rebalances, while nothing more is fetched."""
        with contextlib.suppress(KafkaError):
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.pause(*assigned)
                self._paused = True
        with contextlib.suppress(KafkaError):
            batch = await self._fetch(timeout_ms=0)
            for tp, records in batch.items():  # newly assigned partitions are not paused: read later
                if records:
                    self.consumer.seek(tp, records[0].offset)

    async def _fetch(self, timeout_ms: int = 500) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One getmany(), cut short by close()."""
        limit = max(1, self.owner.max_in_flight - self.in_flight)
        # always through a task: even getmany(timeout_ms=0) blocks while a rebalance is under way,
        # and close() must be able to cut that short; one task per batch, not per message
        if self._closing_waiter is None:
            self._closing_waiter = asyncio.ensure_future(self.owner._closing.wait())
        fetch = asyncio.ensure_future(self.consumer.getmany(timeout_ms=timeout_ms, max_records=limit))
        await asyncio.wait({fetch, self._closing_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConsumerStoppedError):
                await fetch
            return {}
        return fetch.result()

    async def _wait_for_topic(self) -> None:
        """Until the broker lists the topic (see KafkaSubscriber.topic_wait_seconds), or the time is up,
        or the subscriber closes."""
        listed = await _wait_until_listed(self.consumer.topics, self.topic, self.owner.topic_wait_seconds,
                                          self.owner._closing)
        if listed is False:
            log.warning("kafka subscriber: topic %r is not known to the broker after %.0fs; subscribing "
                        "anyway (it is picked up at a later metadata refresh)", self.topic,
                        self.owner.topic_wait_seconds)

    async def messages(self) -> AsyncIterator[Message]:
        """The subscription's messages: the one async generator between the consumer and the caller
        (a generator wrapped in another costs a resumption per message)."""
        owner = self.owner
        if owner._closing.is_set():
            raise ClosedError(f"KafkaSubscriber(group={owner.group!r}) is closed")
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=owner.bootstrap_servers, group_id=owner.group, client_id=owner.client_id,
            enable_auto_commit=False, auto_offset_reset=owner.auto_offset_reset,
            session_timeout_ms=owner.session_timeout_ms, heartbeat_interval_ms=owner.session_timeout_ms // 3,
            max_poll_interval_ms=owner.max_poll_interval_ms, rebalance_timeout_ms=owner.rebalance_timeout_ms)
        owner._subscriptions.append(self)
        try:
            await self.consumer.start()
        except KafkaConnectionError as exc:
            raise _unreachable(self.owner.bootstrap_servers, exc) from exc
        await self._wait_for_topic()
        self.consumer.subscribe([self.topic], listener=self)
        closing = self.owner._closing
        try:
            while not closing.is_set():
                self._apply_rewinds()
                self._commit_soon()  # once per round (a batch), never for an offset not acked yet
                if self.in_flight >= self.owner.max_in_flight:
                    await self._wait_for_room()
                    if self.in_flight >= self.owner.max_in_flight:
                        await self._poll_paused()
                    continue
                if self._paused:
                    self._paused = False
                    with contextlib.suppress(KafkaError):
                        self.consumer.resume(*self.consumer.paused())
                try:
                    batch = await self._fetch()
                except ConsumerStoppedError:
                    return
                for tp, records in batch.items():
                    tracker = self.trackers.get(tp)
                    if tracker is None:
                        tracker = self.trackers[tp] = PartitionTracker(records[0].offset)
                    for record in records:
                        # a nack or a revocation since this batch was fetched: the rest is stale
                        if tracker.rewind_to is not None or closing.is_set():
                            break
                        offset = record.offset
                        # from_record() inlined: this runs for every record
                        if tracker.deliver(offset):
                            self.in_flight += 1
                            metadata = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
                            if record.key is not None and PARTITION_KEY not in metadata:
                                metadata[PARTITION_KEY] = record.key.decode("utf-8", "replace")
                            msg_id = metadata.get(EVENT_ID) or f"{tp.topic}-{tp.partition}-{offset}"
                            msg = tracker.in_flight[offset] = _Delivered(
                                record.value or b"", metadata, msg_id, self, tracker, offset)
                            yield msg
                            if self.trackers.get(tp) is not tracker:
                                break
        finally:
            if self._closing_waiter is not None:
                self._closing_waiter.cancel()
            if closing.is_set():
                await self.finish()

    async def finish(self) -> None:
        """Commit what was acked and leave the group (idempotent)."""
        if self.finished:
            return
        self.finished = True
        # waiting messages were nacked by their router already; the running ones get close_timeout
        if not await self._drain(list(self.trackers), self.owner.close_timeout) \
                and self._revoke(list(self.trackers), running=True):
            await self._drain(list(self.trackers), self.owner.cancel_grace)
        await self.commit_now()
        with contextlib.suppress(KafkaError):
            await self.consumer.stop()


class KafkaSubscriber:
    """A member of consumer group `group`; each `subscribe(topic)` runs its own consumer."""

    #: how long a subscription waits for its topic to reach the broker's metadata before it joins the
    #: group: a member that joins while the topic is unknown is assigned nothing and learns of the topic
    #: only at its next metadata refresh, minutes later (CI: a contract test's two members got nothing
    #: after a create_topic on a busy broker). A topic nobody created yet is subscribed to after it.
    topic_wait_seconds = 10.0

    def __init__(self, bootstrap_servers: str, group: str = "culture", *,
                 client_id: str = "culture-events", auto_offset_reset: str = "earliest",
                 max_in_flight: int = 256, close_timeout: float = 30.0,
                 session_timeout_ms: int = 10000, max_poll_interval_ms: int = 300000,
                 rebalance_timeout_ms: int = 60000, revoke_timeout: float = 30.0,
                 cancel_grace: float = 5.0) -> None:
        """`revoke_timeout`: how long the handlers of partitions taken away in a rebalance may go on
        before they are cancelled; with `cancel_grace` it must stay below `rebalance_timeout_ms` (how
        long the group waits for this member to let them go). Handlers may be slower than
        `max_poll_interval_ms`: the subscription polls on its own while they run."""
        if (revoke_timeout + cancel_grace) * 1000 >= rebalance_timeout_ms:
            raise ValueError(f"revoke_timeout + cancel_grace ({revoke_timeout + cancel_grace}s) must be "
                             f"less than rebalance_timeout_ms ({rebalance_timeout_ms} ms)")
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self.client_id = client_id
        self.auto_offset_reset = auto_offset_reset
        self.max_in_flight = max_in_flight
        self.close_timeout = close_timeout
        self.session_timeout_ms = session_timeout_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.revoke_timeout = revoke_timeout
        self.cancel_grace = cancel_grace
        self._closing = asyncio.Event()
        self._subscriptions: list[_Subscription] = []

    def subscribe(self, topic: str) -> AsyncIterator[Message]:
        """Yield the topic's messages for this group, from the group's committed offsets.

        Nothing happens before the first iteration (then a closed subscriber raises ClosedError).
        """
        return _Subscription(self, topic).messages()

    async def close(self) -> None:
        """Stop fetching, wait for in-flight messages (up to close_timeout), commit, leave the group."""
        self._closing.set()
        for sub in self._subscriptions:
            sub.signal.notify()
        await asyncio.gather(*(sub.finish() for sub in self._subscriptions))
