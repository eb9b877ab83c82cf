"""Pure outbox logic: stamping at write time, the per-key order rule, grouping per topic."""

from __future__ import annotations

import pytest

from culture_events import correlation
from culture_events.message import Message, Meta
from culture_events.outbox.records import Entry, by_topic, prepare, publishable

pytestmark = pytest.mark.unit


def test_prepare_stamps_correlation_event_id_and_time() -> None:
    msg = Message(b"x", {Meta.PARTITION_KEY: "u1"})
    with correlation.bound("job-7", causation="evt-1"):
        prepare(msg)
    assert msg.metadata[Meta.CORRELATION_ID] == "job-7"
    assert msg.metadata[Meta.CAUSATION_ID] == "evt-1"
    assert msg.metadata[Meta.EVENT_ID] == msg.id
    assert msg.metadata[Meta.OCCURRED_AT].endswith("Z")


def test_prepare_keeps_what_the_caller_set() -> None:
    msg = Message(b"x", {Meta.CORRELATION_ID: "mine", Meta.OCCURRED_AT: "2020-01-01T00:00:00Z"})
    with correlation.bound("other"):
        prepare(msg)
    assert msg.metadata[Meta.CORRELATION_ID] == "mine"
    assert msg.metadata[Meta.OCCURRED_AT] == "2020-01-01T00:00:00Z"


def test_publishable_everything_when_nothing_older_is_held_elsewhere() -> None:
    claimed = [(1, "a"), (2, "b"), (3, "a"), (4, None)]
    assert publishable(claimed, [(1, "a"), (2, "b"), (3, "a")]) == [1, 2, 3, 4]


def test_publishable_stops_a_key_at_an_entry_held_by_another_relay() -> None:
    # another relay holds 2 (key a): 1 may go, 3 must wait; key b is unaffected
    claimed = [(1, "a"), (3, "a"), (4, "b"), (5, None)]
    pending = [(1, "a"), (2, "a"), (3, "a"), (4, "b")]
    assert publishable(claimed, pending) == [1, 4, 5]


def test_publishable_nothing_when_the_oldest_entry_of_the_key_is_elsewhere() -> None:
    assert publishable([(5, "k"), (6, "k")], [(2, "k"), (5, "k"), (6, "k")]) == []


def test_by_topic_keeps_store_order() -> None:
    msgs = [Message(b"", id=str(i)) for i in range(4)]
    entries = [Entry(i, "t1" if i % 2 else "t2", m) for i, m in enumerate(msgs)]
    grouped = by_topic(entries)
    assert [m.id for m in grouped["t1"]] == ["1", "3"]
    assert [m.id for m in grouped["t2"]] == ["0", "2"]


def test_a_neo4j_outbox_label_that_could_inject_cypher_is_refused() -> None:
    from culture_events.outbox.neo4j import Neo4jOutbox

    with pytest.raises(ValueError, match="label"):
        Neo4jOutbox("Outbox`) DETACH DELETE (n")


def test_the_neo4j_driver_takes_its_credentials_out_of_the_uri() -> None:
    from culture_events.outbox.neo4j import redact

    assert redact("bolt://neo4j:s3cret@db:7687") == "bolt://neo4j:***@db:7687"
    assert redact("bolt://db:7687") == "bolt://db:7687"
