"""Kafka subscription commits without a broker (a stand-in consumer): a failed commit is offered
again, and the commit before a revocation or close is retried rather than forgotten."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from culture_events.backends.kafka import KafkaSubscriber, _Subscription
from culture_events.backends.offsets import PartitionTracker

pytestmark = pytest.mark.unit


class _FlakyConsumer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.committed: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("coordinator away")
        self.committed.append({tp: o.offset for tp, o in offsets.items()})


def _subscription(failures: int) -> tuple[_Subscription, _FlakyConsumer, TopicPartition]:
    sub = _Subscription(KafkaSubscriber("127.0.0.1:1", "g"), "t")
    consumer = sub.consumer = _FlakyConsumer(failures)  # type: ignore[assignment]
    tp = TopicPartition("t", 0)
    tracker = sub.trackers[tp] = PartitionTracker(0)
    for offset in range(3):
        tracker.deliver(offset)
        tracker.ack(offset)
    return sub, consumer, tp


async def test_a_failed_commit_is_offered_again() -> None:
    sub, consumer, tp = _subscription(failures=1)
    assert await sub.commit() is False
    assert await sub.commit() is True
    assert consumer.committed == [{tp: 3}]


async def test_the_commit_before_a_revocation_is_retried() -> None:
    sub, consumer, tp = _subscription(failures=2)
    await sub.on_partitions_revoked([tp])
    assert consumer.committed == [{tp: 3}]
    assert tp not in sub.trackers
