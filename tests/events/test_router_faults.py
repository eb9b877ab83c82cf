"""Router under faults, on the in-memory backend: per-key order through nacks, slow lanes, retry
budgets that outlast an outage without holding up other keys, revocation of in-flight work."""

from __future__ import annotations

import asyncio

import pytest

from culture_events import Message, Meta
from culture_events.backends.memory import MemoryBroker, MemoryPublisher, MemorySubscriber
from culture_events.errors import PermanentError
from culture_events.middleware import PoisonMeta, Retry, default_middleware
from culture_events.router import Router
from culture_events.testing import wait_until
from culture_runtime.worker import WorkerSettings

pytestmark = pytest.mark.unit


async def _start(router: Router) -> asyncio.Task[None]:
    task = asyncio.create_task(router.run())
    await asyncio.wait_for(router.running.wait(), 5)
    return task


def _keyed(key: str, n: int, start: int = 0) -> list[Message]:
    return [Message(str(i).encode(), {Meta.PARTITION_KEY: key}) for i in range(start, start + n)]


async def test_per_key_order_holds_through_a_nack_while_the_lane_is_full() -> None:
    """A nacked message's key: nothing of that key may be handled before its redelivery, not even a
    message the consume loop held (waiting for room in the full lane) while the nack happened."""
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    sub = MemorySubscriber(broker, "g")
    router = Router(concurrency=1)
    handled: list[int] = []
    failed_once = False

    async def handler(msg: Message) -> list[Message]:
        nonlocal failed_once
        n = int(msg.payload)
        if n == 0 and not failed_once:
            # the consume loop has handed out everything it could (the lane is full behind us)
            await wait_until(lambda: sub._in_flight >= 9, 5, "the lane filled up")
            failed_once = True
            raise RuntimeError("transient")
        handled.append(n)
        return []

    router.add_consumer_handler("h", "in", sub, handler)
    task = await _start(router)
    await pub.publish("in", *_keyed("k", 20))
    await wait_until(lambda: len(handled) >= 20, 10, "20 handled")
    await router.close()
    await task
    assert handled == list(range(20))


async def test_a_slow_lane_does_not_stop_the_other_lanes() -> None:
    """One key whose handler hangs: the consume loop keeps feeding the other lanes (it never waits
    for room in one lane), so the other keys are all handled meanwhile."""
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    router = Router(concurrency=2)
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        if msg.key == "slow":
            await release.wait()
        handled.append(msg.key or "")
        return []

    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler)
    task = await _start(router)
    # "slow" fills its lane; then 100 messages of keys that land on the other lane
    other = [k for k in (f"k{i}" for i in range(400)) if _lane("k", k, 2) != _lane("k", "slow", 2)][:100]
    await pub.publish("in", *_keyed("slow", 30))
    await pub.publish("in", *[Message(b"x", {Meta.PARTITION_KEY: k}) for k in other])
    await wait_until(lambda: len(handled) >= 100, 10, "the other lane's 100 messages")
    release.set()
    await wait_until(lambda: len(handled) == 130, 10, "all 130")
    await router.close()
    await task


def _lane(_: str, key: str, lanes: int) -> int:
    import zlib

    return zlib.crc32(key.encode()) % lanes


def _chain(broker: MemoryBroker, retry: Retry) -> list:
    return default_middleware(poison_publisher=MemoryPublisher(broker), poison_topic="g.poison",
                              retry=retry, timeout_seconds=5)


async def test_an_outage_longer_than_the_old_retries_is_outlasted_without_blocking_other_keys() -> None:
    """With the worker's default retry settings a handler failing for several seconds (more than
    the old 0.2 + 0.4 + 0.8 s) ends handled, not poisoned; meanwhile other keys in the same lane of
    the same partition are handled (the failing key is parked, not slept on in its lane)."""
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    router = Router(concurrency=1)
    router.add_middleware(*_chain(broker, WorkerSettings(retry_initial_seconds=0.2).retry()))
    outage_over = asyncio.Event()
    attempts = 0
    handled: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        if msg.key == "a":
            attempts += 1
            if not outage_over.is_set():
                raise ConnectionError("database away")
        handled.append(f"{msg.key}{int(msg.payload)}")
        return []

    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler)
    task = await _start(router)
    await pub.publish("in", *_keyed("a", 3))
    await pub.publish("in", *_keyed("b", 5))
    # 0.2 + 0.4 + 0.8 + 1.6 s: the 5th attempt is past the old retries (which had poisoned it)
    await wait_until(lambda: attempts >= 5, 20, "a's 5th attempt")
    assert handled == ["b0", "b1", "b2", "b3", "b4"]  # b went on while a was failing
    outage_over.set()
    await wait_until(lambda: len(handled) == 8, 30, "a handled after the outage")
    await router.close()
    await task
    assert handled[5:] == ["a0", "a1", "a2"]
    assert broker.messages("g.poison") == []


async def test_an_exhausted_budget_poisons_with_the_attempts_counted() -> None:
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    router = Router(concurrency=1)
    router.add_middleware(*_chain(broker, Retry(max_retries=None, budget=1.0, initial_interval=0.05,
                                                max_interval=0.2)))
    attempts = 0

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("never back")

    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler)
    task = await _start(router)
    await pub.publish("in", *_keyed("a", 1))
    await wait_until(lambda: len(broker.messages("g.poison")) == 1, 10, "poisoned")
    await router.close()
    await task
    record = broker.messages("g.poison")[0]
    assert int(record.metadata[PoisonMeta.ATTEMPTS]) == attempts >= 4
    assert "never back" in record.metadata[PoisonMeta.REASON]


async def test_a_permanent_error_poisons_at_once() -> None:
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    router = Router(concurrency=1)
    router.add_middleware(*_chain(broker, WorkerSettings().retry()))
    attempts = 0

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        attempts += 1
        raise PermanentError("bad input")

    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler)
    task = await _start(router)
    await pub.publish("in", *_keyed("a", 1))
    await wait_until(lambda: len(broker.messages("g.poison")) == 1, 10, "poisoned")
    await router.close()
    await task
    assert attempts == 1
    assert broker.messages("g.poison")[0].metadata[PoisonMeta.ATTEMPTS] == "1"


async def test_close_does_not_wait_for_parked_retries() -> None:
    """A key parked for a long backoff is nacked at close (redelivered to the next owner), so close
    returns promptly instead of waiting out the backoff."""
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    sub = MemorySubscriber(broker, "g", close_timeout=60)
    router = Router(concurrency=1)
    router.add_middleware(*_chain(broker, Retry(max_retries=None, budget=600, initial_interval=300,
                                                max_interval=300)))
    attempts = 0

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("away")

    router.add_consumer_handler("h", "in", sub, handler)
    task = await _start(router)
    await pub.publish("in", *_keyed("a", 3))
    await wait_until(lambda: attempts == 1, 5, "first attempt")
    await asyncio.wait_for(router.close(), 10)
    await task
    assert sub._in_flight == 0
    assert broker.messages("g.poison") == []


async def test_a_handler_can_have_its_own_retry_budget() -> None:
    """The chain's Retry allows 600 s; this handler's own budget (1 s) poisons after about 1 s."""
    broker = MemoryBroker(default_partitions=1)
    pub = MemoryPublisher(broker)
    router = Router(concurrency=1)
    router.add_middleware(*_chain(broker, Retry(max_retries=None, budget=600, initial_interval=0.05,
                                                max_interval=0.2)))
    attempts = 0

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("never back")

    router.add_consumer_handler("h", "in", MemorySubscriber(broker, "g"), handler, retry_budget=1.0)
    task = await _start(router)
    await pub.publish("in", *_keyed("a", 1))
    await wait_until(lambda: len(broker.messages("g.poison")) == 1, 10, "poisoned after the handler's budget")
    await router.close()
    await task
    assert int(broker.messages("g.poison")[0].metadata[PoisonMeta.ATTEMPTS]) == attempts >= 4
