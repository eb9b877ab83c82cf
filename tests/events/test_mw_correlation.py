"""CorrelationID: the ids reach outputs and every publish made while handling."""

from __future__ import annotations

import pytest

from culture_events import Message, Meta, correlation
from culture_events.middleware import correlation_id
from culture_events.testing import RecordingPublisher

pytestmark = pytest.mark.unit


async def test_publishes_and_outputs_carry_the_chain_ids() -> None:
    pub = RecordingPublisher()

    async def handler(msg: Message) -> list[Message]:
        assert correlation.current() == "job-7"
        await pub.publish("side", Message(b"side effect"))  # e.g. deep in a service call
        return [Message(b"output")]

    incoming = Message(b"in", {Meta.CORRELATION_ID: "job-7"})
    [out] = await correlation_id(handler)(incoming)
    [side] = pub.published["side"]
    for m in (out, side):
        assert m.metadata[Meta.CORRELATION_ID] == "job-7"
        assert m.metadata[Meta.CAUSATION_ID] == incoming.id
    assert correlation.current() is None  # reset after the handler


async def test_message_without_correlation_starts_a_chain() -> None:
    async def handler(msg: Message) -> list[Message]:
        return [Message()]

    incoming = Message()
    [out] = await correlation_id(handler)(incoming)
    assert out.metadata[Meta.CORRELATION_ID] == incoming.id
