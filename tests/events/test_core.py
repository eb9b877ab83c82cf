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
    assert t.in_flight == {0, 1, 3}
    t.ack(0)
    assert t.committed == 1
