"""PoisonQueue: failed messages go to the poison topic with why, and are acked."""

from __future__ import annotations

import pytest

from culture_events import Message, Meta, handling
from culture_events.errors import BackendError, set_attempts
from culture_events.middleware import PoisonMeta, PoisonQueue
from culture_events.testing import RecordingPublisher

pytestmark = pytest.mark.unit


async def test_failure_is_published_with_reason_and_swallowed() -> None:
    pub = RecordingPublisher()

    async def broken(msg: Message) -> list[Message]:
        exc = ValueError("bad rating")
        set_attempts(exc, 4)
        raise exc

    msg = Message(b"payload", {Meta.EVENT_TYPE: "T", Meta.CORRELATION_ID: "job"})
    token = handling.bind(handling.Handling("feed.fan-out", "catalog.review-created"))
    try:
        assert await PoisonQueue(pub, "feed.poison")(broken)(msg) == []
    finally:
        handling.unbind(token)
    [poisoned] = pub.published["feed.poison"]
    assert poisoned.payload == b"payload"
    meta = poisoned.metadata
    assert meta[PoisonMeta.REASON] == "ValueError: bad rating"
    assert meta[PoisonMeta.HANDLER] == "feed.fan-out"
    assert meta[PoisonMeta.TOPIC] == "catalog.review-created"
    assert meta[PoisonMeta.ATTEMPTS] == "4"
    assert meta[PoisonMeta.ORIGINAL_ID] == msg.id
    assert meta[Meta.CORRELATION_ID] == "job" and meta[Meta.EVENT_TYPE] == "T"


async def test_errors_not_selected_and_poison_publish_failures_propagate() -> None:
    pub = RecordingPublisher()

    async def broken(msg: Message) -> list[Message]:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await PoisonQueue(pub, "p", should_poison=lambda e: not isinstance(e, KeyError))(broken)(Message())
    pub.fail_with = OSError("broker down")
    with pytest.raises(BackendError):  # nack: redelivered rather than lost
        await PoisonQueue(pub, "p")(broken)(Message())


async def test_success_passes_through() -> None:
    async def ok(msg: Message) -> list[Message]:
        return [Message(b"out")]

    pub = RecordingPublisher()
    assert [m.payload for m in await PoisonQueue(pub, "p")(ok)(Message())] == [b"out"]
    assert not pub.published
