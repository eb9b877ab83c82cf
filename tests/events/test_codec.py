"""Protobuf codec: standard metadata on encode, strict decode."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2, wrappers_pb2

from culture_events import Message, Meta
from culture_events.codec import EventTypes, decode, encode, occurred_at
from culture_events.errors import PermanentError, UndecodablePayload

pytestmark = pytest.mark.unit


def test_roundtrip_with_standard_metadata() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    msg = encode(wrappers_pb2.StringValue(value="Dune"), key="user-1", schema_version=2, occurred_at=when)
    meta = msg.metadata
    assert meta[Meta.EVENT_TYPE] == "google.protobuf.StringValue"
    assert meta[Meta.EVENT_ID] == msg.id
    assert meta[Meta.PARTITION_KEY] == "user-1" and msg.key == "user-1"
    assert meta[Meta.SCHEMA_VERSION] == "2"
    assert meta[Meta.OCCURRED_AT] == "2026-01-02T03:04:05Z" and occurred_at(msg) == when
    assert decode(msg, wrappers_pb2.StringValue).value == "Dune"
    assert EventTypes([wrappers_pb2.StringValue]).decode(msg) == wrappers_pb2.StringValue(value="Dune")


def test_undecodable_payloads_are_permanent_errors() -> None:
    garbage = Message(b"\x0a\xff", {Meta.EVENT_TYPE: "google.protobuf.StringValue"})
    with pytest.raises(UndecodablePayload, match="not a valid"):
        decode(garbage, wrappers_pb2.StringValue)
    wrong_type = encode(timestamp_pb2.Timestamp(seconds=1))
    with pytest.raises(UndecodablePayload, match=r"not a google\.protobuf\.StringValue"):
        decode(wrong_type, wrappers_pb2.StringValue)
    too_new = encode(wrappers_pb2.StringValue(), schema_version=3)
    with pytest.raises(UndecodablePayload, match="newer"):
        decode(too_new, wrappers_pb2.StringValue, max_schema_version=2)
    with pytest.raises(UndecodablePayload, match="unknown event type"):
        EventTypes().decode(wrong_type)
    assert issubclass(UndecodablePayload, PermanentError)
