"""The default middleware order, tested by behaviour (memory backend + router)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from culture_events import Message, Meta
from culture_events.backends.memory import MemoryBroker, MemoryPublisher, MemorySubscriber
from culture_events.errors import HandlerTimeout
from culture_events.middleware import (
    Deduplicator,
    MemoryProcessedStore,
    Metrics,
    PoisonMeta,
    PoisonQueue,
    Retry,
    Throttle,
    correlation_id,
    default_middleware,
    recoverer,
)
from culture_events.router import Router
from culture_events.testing import RecordingPublisher, wait_until

pytestmark = pytest.mark.unit


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def test_default_order_is_the_documented_one() -> None:
    chain = default_middleware(poison_publisher=RecordingPublisher(), poison_topic="p",
                               dedup_store=MemoryProcessedStore(), metrics=Metrics(CollectorRegistry()),
                               throttle=Throttle(100))
    kinds = [m if m in (correlation_id, recoverer) else type(m) for m in chain]
    assert kinds[:4] == [Throttle, Metrics, correlation_id, PoisonQueue]
    assert kinds[4] is Retry and kinds[6:] == [Deduplicator, recoverer]
    assert chain[5].__qualname__.startswith("timeout")


async def test_chain_behaviour_end_to_end() -> None:
    broker = MemoryBroker()
    pub = MemoryPublisher(broker)
    registry = CollectorRegistry()
    router = Router()
    router.add_middleware(*default_middleware(
        poison_publisher=pub, poison_topic="g.poison", retry=Retry(max_retries=2, sleep=_no_sleep),
        timeout_seconds=0.05, dedup_store=MemoryProcessedStore(), metrics=Metrics(registry)))
    runs: dict[bytes, int] = {}

    async def handler(msg: Message) -> list[Message]:
        runs[msg.payload] = runs.get(msg.payload, 0) + 1
        if msg.payload == b"hang":
            await asyncio.sleep(10)  # Timeout (inside Retry) -> retried -> poisoned
        if msg.payload == b"exit":
            raise SystemExit(2)  # Recoverer (innermost) -> an error Retry and PoisonQueue handle
        return [Message(b"out:" + msg.payload)]

    router.add_handler("h", "in", MemorySubscriber(broker, "g"), handler, "out", pub)
    task = asyncio.create_task(router.run())
    ok = Message(b"ok", {Meta.CORRELATION_ID: "job-1"})
    await pub.publish("in", Message(b"hang", {Meta.CORRELATION_ID: "job-2"}), Message(b"exit"), ok)
    await wait_until(lambda: len(broker.messages("g.poison")) == 2 and broker.messages("out"), 10, "outcomes")
    await pub.publish("in", ok.copy())  # a duplicate: Deduplicator skips it (handler not run again)
    marker = Message(b"marker")
    await pub.publish("in", marker)
    await wait_until(lambda: runs.get(b"marker") == 1, 5, "the marker")
    await router.close()
    await task
    poison = {m.payload: m.metadata for m in broker.messages("g.poison")}
    assert poison[b"hang"][PoisonMeta.ERROR_TYPE].endswith(HandlerTimeout.__qualname__)
    assert poison[b"hang"][PoisonMeta.ATTEMPTS] == "3" and runs[b"hang"] == 3
    assert poison[b"hang"][Meta.CORRELATION_ID] == "job-2"  # CorrelationID is outside PoisonQueue
    assert "HandlerCrashed" in poison[b"exit"][PoisonMeta.REASON] and runs[b"exit"] == 3
    assert runs[b"ok"] == 1
    [out, _marker_out] = broker.messages("out")
    assert out.metadata[Meta.CORRELATION_ID] == "job-1" and out.metadata[Meta.CAUSATION_ID] == ok.id
    # Metrics is outermost: poisoned messages count as handled ("ok"), nothing reached the router as error
    value = registry.get_sample_value("culture_events_messages_handled_total",
                                      {"handler": "h", "topic": "in", "outcome": "ok"})
    assert value == 5
