"""Metrics: counters by outcome and a latency histogram, in a private registry."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from culture_events import Message, handling
from culture_events.middleware import Metrics

pytestmark = pytest.mark.unit


async def test_counts_outcomes_outputs_and_latency() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)

    async def ok(msg: Message) -> list[Message]:
        return [Message(), Message()]

    async def bad(msg: Message) -> list[Message]:
        raise RuntimeError

    token = handling.bind(handling.Handling("h", "t"))
    try:
        await metrics(ok)(Message())
        with pytest.raises(RuntimeError):
            await metrics(bad)(Message())
    finally:
        handling.unbind(token)
    value = registry.get_sample_value
    assert value("culture_events_messages_handled_total",
                 {"handler": "h", "topic": "t", "outcome": "ok"}) == 1
    assert value("culture_events_messages_handled_total",
                 {"handler": "h", "topic": "t", "outcome": "error"}) == 1
    assert value("culture_events_messages_produced_total", {"handler": "h"}) == 2
    assert value("culture_events_handler_seconds_count", {"handler": "h", "topic": "t"}) == 2
