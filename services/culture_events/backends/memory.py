"""The in-process backend: partitioned topics and consumer groups in one process's memory.

It has the semantics the Kafka backend has (partitions chosen by the partition key, a committed
offset per group and partition, nack rewinds, partitions shared among a group's members), so unit
tests and single-process runs see what production sees. One `MemoryBroker` is the "server": every
publisher and subscriber made from it shares its topics; a new subscriber in an existing group
resumes after the group's last ack.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator

from culture_events import correlation
from culture_events.backends._signal import Signal
from culture_events.backends.offsets import PartitionTracker
from culture_events.errors import ClosedError
from culture_events.message import Message, Settlement

log = logging.getLogger(__name__)


def partition_for(key: str | None, partitions: int, fallback: int) -> int:
    """Stable partition of a key (crc32, like a deterministic Kafka partitioner); keyless spread."""
    if key is None:
        return fallback % partitions
    return zlib.crc32(key.encode()) % partitions


class _Group:
    def __init__(self, partitions: int) -> None:
        self.trackers = [PartitionTracker(0) for _ in range(partitions)]
        self.position = [0] * partitions
        self.owner: list[object | None] = [None] * partitions
        self.members: list[object] = []


class _Topic:
    def __init__(self, partitions: int) -> None:
        self.log: list[list[tuple[str, dict[str, str], bytes]]] = [[] for _ in range(partitions)]
        self.groups: dict[str, _Group] = {}
        self.signal = Signal()
        self.round_robin = itertools.count()

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(len(self.log))
        return self.groups[name]


class MemoryBroker:
    """The shared state of the in-memory backend: topics, their partitions and consumer groups."""

    def __init__(self, default_partitions: int = 4) -> None:
        self.default_partitions = default_partitions
        self.topics: dict[str, _Topic] = {}

    def topic(self, name: str, partitions: int | None = None) -> _Topic:
        """The topic, created on first use (like Kafka with auto-create)."""
        if name not in self.topics:
            self.topics[name] = _Topic(partitions or self.default_partitions)
        return self.topics[name]

    def messages(self, topic: str) -> list[Message]:
        """Every message ever published to a topic, partition by partition (for assertions)."""
        t = self.topics.get(topic)
        return [Message(p, m, id=i) for part in (t.log if t else []) for (i, m, p) in part]


class MemoryPublisher:
    """Publishes into a MemoryBroker. Also a TopicCreator (sets a topic's partition count)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._closed = False

    async def publish(self, topic: str, *messages: Message) -> None:
        """Append the messages to their partitions (chosen by partition key) and wake subscribers."""
        if self._closed:
            raise ClosedError("MemoryPublisher is closed; create a new one")
        t = self.broker.topic(topic)
        for msg in messages:
            correlation.stamp(msg)
            p = partition_for(msg.key, len(t.log), next(t.round_robin))
            t.log[p].append((msg.id, dict(msg.metadata), msg.payload))
        t.signal.notify()

    async def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create the topic with this many partitions (no-op when it exists)."""
        self.broker.topic(topic, partitions)

    async def close(self) -> None:
        """Refuse further publishes."""
        self._closed = True


class MemorySubscriber:
    """A member of consumer group `group` on a MemoryBroker; one member per `subscribe()` call.

    Partitions are shared fairly among a group's members; a member gives a partition away only
    when none of its messages are in flight, so a rebalance never duplicates a message.
    """

    def __init__(self, broker: MemoryBroker, group: str, *, max_in_flight: int = 256,
                 close_timeout: float = 30.0) -> None:
        self.broker = broker
        self.group = group
        self.max_in_flight = max_in_flight
        self.close_timeout = close_timeout
        self._closed = False
        self._in_flight = 0
        self._signals: set[Signal] = set()
        self._settled = Signal()
        self._members: list[tuple[_Topic, _Group, object]] = []

    async def subscribe(self, topic: str) -> AsyncIterator[Message]:
        """Yield the topic's messages for this group, resuming after the group's committed offsets."""
        if self._closed:
            raise ClosedError(f"MemorySubscriber(group={self.group!r}) is closed")
        t = self.broker.topic(topic)
        g = t.group(self.group)
        me = object()
        g.members.append(me)
        self._members.append((t, g, me))
        self._signals.add(t.signal)
        t.signal.notify()  # others rebalance towards the new member
        try:
            while not self._closed:
                msg = self._next(t, g, me)
                if msg is None:
                    await t.signal.wait(1.0)
                    continue
                yield msg
        finally:
            self._leave(t, g, me)

    def _next(self, t: _Topic, g: _Group, me: object) -> Message | None:
        """The next message to hand out to member `me`, after rebalancing; None when none."""
        self._rebalance(t, g, me)
        if self._in_flight >= self.max_in_flight:
            return None
        for p, owner in enumerate(g.owner):
            if owner is not me:
                continue
            tracker = g.trackers[p]
            rewind = tracker.take_rewind()
            if rewind is not None:
                g.position[p] = rewind
            part = t.log[p]
            while g.position[p] < len(part):
                offset = g.position[p]
                g.position[p] += 1
                if tracker.deliver(offset):
                    return self._hand_out(t, tracker, offset, part[offset])
        return None

    def _hand_out(self, t: _Topic, tracker: PartitionTracker, offset: int,
                  entry: tuple[str, dict[str, str], bytes]) -> Message:
        msg_id, metadata, payload = entry
        msg = Message(payload, metadata, id=msg_id)
        self._in_flight += 1

        def settled(state: Settlement) -> None:
            self._in_flight -= 1
            (tracker.ack if state is Settlement.ACKED else tracker.nack)(offset)
            t.signal.notify()
            self._settled.notify()

        msg.on_settled(settled)
        return msg

    @staticmethod
    def _rebalance(t: _Topic, g: _Group, me: object) -> None:
        fair = math.ceil(len(t.log) / max(1, len(g.members)))
        owned = [p for p, o in enumerate(g.owner) if o is me]
        for p in owned[fair:]:
            if not g.trackers[p].busy:  # hand over only at a safe point
                g.owner[p] = None
                t.signal.notify()
        for p, o in enumerate(g.owner):
            if len([q for q in g.owner if q is me]) >= fair:
                break
            if o is None:
                g.owner[p] = me
                g.position[p] = g.trackers[p].committed
                g.trackers[p].rewind_to = None

    def _leave(self, t: _Topic, g: _Group, me: object) -> None:
        if me in g.members:
            g.members.remove(me)
            for p, o in enumerate(g.owner):
                if o is me:
                    g.owner[p] = None
                    g.trackers[p].in_flight.clear()  # left unsettled: the next owner re-reads them
            t.signal.notify()

    async def close(self) -> None:
        """Stop handing out messages, wait (up to close_timeout) for in-flight ones, leave the groups."""
        if self._closed:
            return
        self._closed = True
        for s in self._signals:
            s.notify()
        deadline = time.monotonic() + self.close_timeout
        while self._in_flight and time.monotonic() < deadline:
            await self._settled.wait(0.5)
        if self._in_flight:
            log.warning("memory subscriber %s closed with %d unsettled messages", self.group, self._in_flight)
        for t, g, me in self._members:
            self._leave(t, g, me)
