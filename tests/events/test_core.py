"""Unit tests of the pure pieces: message settlement, correlation stamping, the offset tracker."""

from __future__ import annotations

import pytest

from culture_events import Message, Meta, correlation
from culture_events.backends.offsets import PartitionTracker
from culture_events.message import Settlement

pytestmark = pytest.mark.unit


async def test_ack_and_nack_are_idempotent_and_exclusive() -> None:
    msg = Message(b"x")
    seen: list[Settlement] = []
    msg.on_settled(seen.append)
    assert msg.ack() and msg.ack()
    assert not msg.nack()
    assert await msg.settled() is Settlement.ACKED
    assert seen == [Settlement.ACKED]
    late: list[Settlement] = []
    msg.on_settled(late.append)  # already settled: called at once
    assert late == [Settlement.ACKED]


def test_stamp_fills_ids_in_effect_but_keeps_explicit_ones() -> None:
    with correlation.bound("job-1", causation="evt-9"):
        fresh = correlation.stamp(Message())
        explicit = correlation.stamp(Message(metadata={Meta.CORRELATION_ID: "other"}))
    assert fresh.metadata[Meta.CORRELATION_ID] == "job-1"
    assert fresh.metadata[Meta.CAUSATION_ID] == "evt-9"
    assert explicit.metadata[Meta.CORRELATION_ID] == "other"
    assert Meta.CORRELATION_ID not in correlation.stamp(Message()).metadata


def test_tracker_commits_only_contiguous_acks() -> None:
    t = PartitionTracker(10)
    assert not t.deliver(9)  # committed already
    assert all(t.deliver(o) for o in (10, 11, 12))
    assert not t.deliver(11)  # in flight
    t.ack(12)
    assert t.take_commit() is None
    t.ack(10)
    assert t.take_commit() == 11
    t.ack(11)
    assert t.take_commit() == 13
    assert not t.busy


def test_tracker_nack_rewinds_and_skips_settled_offsets() -> None:
    t = PartitionTracker(0)
    for o in range(4):
        t.deliver(o)
    t.ack(2)
    t.nack(1)
    t.nack(3)
    assert t.take_rewind() == 1 and t.take_rewind() is None
    # re-reading from 1: 1 and 3 again, 2 (acked) and 0 (in flight) skipped
    assert [o for o in range(4) if t.deliver(o)] == [1, 3]
    assert set(t.in_flight) == {0, 1, 3}
    t.ack(0)
    assert t.committed == 1


def test_tracker_offers_a_failed_commit_again() -> None:
    t = PartitionTracker(0)
    for o in range(3):
        t.deliver(o)
        t.ack(o)
    previous = t.reported
    assert t.take_commit() == 3
    t.commit_failed(3, previous)
    assert t.take_commit() == 3  # not forgotten
    t.deliver(3)
    t.ack(3)
    previous = t.reported
    assert t.take_commit() == 4
    t.commit_failed(2, 0)  # a stale failure report changes nothing
    assert t.take_commit() is None


async def test_a_failed_kafka_commit_is_retried_by_the_next_one() -> None:
    """The subscription's commit: a KafkaError (a rebalance, a broker away) leaves the offsets to be
    committed by the next round instead of forgetting them (the consumer here is a stand-in for
    aiokafka's; the broker-level behaviour is covered by the Kafka contract tests)."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaConnectionError

    from culture_events.backends.kafka import KafkaSubscriber, _Subscription

    class Consumer:
        def __init__(self) -> None:
            self.calls: list[dict[TopicPartition, int]] = []

        async def commit(self, offsets: dict[TopicPartition, object]) -> None:
            self.calls.append({tp: o.offset for tp, o in offsets.items()})  # type: ignore[attr-defined]
            if len(self.calls) == 1:
                raise KafkaConnectionError("broker away")

    sub = _Subscription(KafkaSubscriber("127.0.0.1:1", "g"), "t")
    sub.consumer = Consumer()  # type: ignore[assignment]
    tp = TopicPartition("t", 0)
    tracker = sub.trackers[tp] = PartitionTracker(0)
    for o in range(5):
        tracker.deliver(o)
        tracker.ack(o)
    await sub.commit()
    await sub.commit()
    assert sub.consumer.calls == [{tp: 5}, {tp: 5}]  # type: ignore[attr-defined]


async def test_a_kafka_subscription_waits_for_its_topic_to_reach_the_brokers_metadata(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A member that joins its group while the broker does not list the topic yet (created a moment
    ago) is assigned nothing until a metadata refresh minutes later: the subscription looks for the
    topic first, and gives up waiting (subscribing anyway) after topic_wait_seconds."""
    import asyncio

    from culture_events.backends import kafka

    class Consumer:
        def __init__(self, known_after: int) -> None:
            self.calls, self.known_after = 0, known_after

        async def topics(self) -> set[str]:
            self.calls += 1
            return {"t"} if self.calls > self.known_after else {"other"}

    real_sleep = asyncio.sleep
    monkeypatch.setattr(kafka.asyncio, "sleep", lambda _s: real_sleep(0))
    sub = kafka._Subscription(kafka.KafkaSubscriber("127.0.0.1:1", "g"), "t")
    sub.consumer = Consumer(known_after=3)  # type: ignore[assignment]
    await sub._wait_for_topic()
    assert sub.consumer.calls == 4  # type: ignore[attr-defined]

    owner = kafka.KafkaSubscriber("127.0.0.1:1", "g")
    owner.topic_wait_seconds = 0.0
    never = kafka._Subscription(owner, "t")
    never.consumer = Consumer(known_after=10**6)  # type: ignore[assignment]
    await never._wait_for_topic()  # returns: the topic may be created later
    assert never.consumer.calls == 1  # type: ignore[attr-defined]
