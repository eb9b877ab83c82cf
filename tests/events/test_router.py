"""Router behaviour on the in-memory backend: outputs, lanes, failures, shutdown, readiness."""

from __future__ import annotations

import asyncio

import pytest

from culture_events import Message, Meta
from culture_events.backends.memory import MemoryBroker, MemoryPublisher, MemorySubscriber
from culture_events.errors import EventsError
from culture_events.router import Router
from culture_events.testing import wait_until

pytestmark = pytest.mark.unit


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


async def _start(router: Router) -> asyncio.Task[None]:
    task = asyncio.create_task(router.run())
    await asyncio.wait_for(router.running.wait(), 5)
    return task


async def test_outputs_are_published_and_inputs_acked(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router()

    async def double(msg: Message) -> list[Message]:
        return [Message(msg.payload * 2, {Meta.PARTITION_KEY: msg.key or ""})]

    router.add_handler("double", "in", MemorySubscriber(broker, "g"), double, "out", pub)
    task = await _start(router)
    assert router.is_ready()
    await pub.publish("in", *[Message(f"{i}".encode(), {Meta.PARTITION_KEY: "k"}) for i in range(20)])
    await wait_until(lambda: len(broker.messages("out")) == 20, 5, "20 outputs")
    await router.close()
    await task
    assert not router.is_ready()
    assert [m.payload for m in broker.messages("out")] == [f"{i}".encode() * 2 for i in range(20)]


async def test_per_key_order_with_bounded_concurrency(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router(concurrency=4)
    seen: dict[str, list[int]] = {}
    active = 0
    peak = 0

    async def record(msg: Message) -> list[Message]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        seen.setdefault(msg.key or "", []).append(int(msg.payload))
        active -= 1
        return []

    router.add_consumer_handler("record", "in", MemorySubscriber(broker, "g"), record)
    task = await _start(router)
    await pub.publish("in", *[Message(str(i).encode(), {Meta.PARTITION_KEY: f"k{i % 7}"})
                              for i in range(400)])
    await wait_until(lambda: sum(map(len, seen.values())) == 400, 10, "400 handled")
    await router.close()
    await task
    assert all(v == sorted(v) for v in seen.values())
    assert 1 < peak <= 4


async def test_failing_handler_is_nacked_and_redelivered_without_stopping(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router()
    attempts: dict[bytes, int] = {}

    async def flaky(msg: Message) -> list[Message]:
        attempts[msg.payload] = attempts.get(msg.payload, 0) + 1
        if msg.payload == b"bad" and attempts[msg.payload] < 3:
            raise RuntimeError("transient")
        if msg.payload == b"exit" and attempts[msg.payload] < 2:
            raise SystemExit(3)  # even this does not stop the router (safety net)
        return []

    router.add_consumer_handler("flaky", "in", MemorySubscriber(broker, "g"), flaky)
    task = await _start(router)
    await pub.publish("in", Message(b"bad"), Message(b"exit"), Message(b"good"))
    await wait_until(lambda: attempts.get(b"bad") == 3 and attempts.get(b"exit") == 2 and b"good" in attempts,
                     5, "redeliveries")
    assert router.is_ready()
    await router.close()
    await task


async def test_close_finishes_in_flight_messages(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router()
    started, release, done = asyncio.Event(), asyncio.Event(), []

    async def slow(msg: Message) -> list[Message]:
        started.set()
        await release.wait()
        done.append(msg.id)
        return []

    router.add_consumer_handler("slow", "in", MemorySubscriber(broker, "g"), slow)
    task = await _start(router)
    sent = Message(b"x")
    await pub.publish("in", sent)
    await asyncio.wait_for(started.wait(), 5)
    closing = asyncio.create_task(router.close())
    await asyncio.sleep(0.05)
    assert not closing.done() and not router.is_ready()
    release.set()
    await asyncio.wait_for(closing, 5)
    await task
    assert done == [sent.id]
    # acked: a new member of the group does not get it again
    marker = Message(b"marker")
    await pub.publish("in", marker)
    sub = MemorySubscriber(broker, "g")
    async for msg in sub.subscribe("in"):
        assert msg.id == marker.id
        msg.ack()
        break
    await sub.close()


async def test_outputs_without_publisher_are_an_error(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router()
    calls = 0

    async def chatty(msg: Message) -> list[Message]:
        nonlocal calls
        calls += 1
        return [Message(b"out")]

    router.add_consumer_handler("chatty", "in", MemorySubscriber(broker, "g"), chatty)
    task = await _start(router)
    await pub.publish("in", Message(b"x"))
    await wait_until(lambda: calls >= 2, 5, "a redelivery after the error")
    await router.close()
    await task


async def test_registration_errors() -> None:
    router = Router()
    sub = MemorySubscriber(MemoryBroker(), "g")

    async def h(msg: Message) -> list[Message]:
        return []

    router.add_consumer_handler("h", "t", sub, h)
    with pytest.raises(ValueError, match="already registered"):
        router.add_consumer_handler("h", "t", sub, h)
    with pytest.raises(ValueError, match="publish_topic and publisher"):
        router.add_handler("h2", "t", sub, h, publish_topic="x")
    with pytest.raises(EventsError, match="no handlers"):
        await Router().run()


async def test_middleware_order_first_added_is_outermost(broker: MemoryBroker) -> None:
    pub = MemoryPublisher(broker)
    router = Router()
    trail: list[str] = []

    def tag(name: str):
        def mw(nxt):
            async def h(msg: Message) -> list[Message]:
                trail.append(f"{name}>")
                out = await nxt(msg)
                trail.append(f"<{name}")
                return out
            return h
        return mw

    async def handler(msg: Message) -> list[Message]:
        trail.append("handler")
        return []

    router.add_middleware(tag("a"), tag("b"))
    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler, middleware=[tag("c")])
    task = await _start(router)
    await pub.publish("in", Message(b"x"))
    await wait_until(lambda: len(trail) == 7, 5, "the chain")
    await router.close()
    await task
    assert trail == ["a>", "b>", "c>", "handler", "<c", "<b", "<a"]
