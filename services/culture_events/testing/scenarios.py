"""The universal contract: scenarios every backend must pass, the in-memory one included.

Each scenario is `async def scenario(backend, name)`, where `name` is unique to the test run (use it
for topics and groups). `SCENARIOS` maps a scenario's name to `(function, required features)`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from culture_events.message import Message, Meta, Settlement
from culture_events.testing.features import Backend
from culture_events.testing.helpers import Collector, prepare_topic, wait_until

Scenario = Callable[[Backend, str], Awaitable[None]]
SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...]]] = {}


def scenario(*requires: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario that needs the named Features flags."""
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[fn.__name__] = (fn, requires)
        return fn
    return register


def _msgs(count: int, keys: int = 0, prefix: str = "m") -> list[Message]:
    return [Message(f"{prefix}{i}".encode(), {Meta.PARTITION_KEY: f"k{i % keys}"} if keys else {})
            for i in range(count)]


async def _publish(backend: Backend, topic: str, *messages: Message) -> None:
    publisher = backend.publisher()
    try:
        await publisher.publish(topic, *messages)
    finally:
        await publisher.close()


@scenario()
async def publish_subscribe(backend: Backend, name: str) -> None:
    """One message published is delivered with the same id and payload."""
    await prepare_topic(backend, name)
    sent = Message(b"hello \x00 bytes")
    await _publish(backend, name, sent)
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(1, backend.features.timeout)
    await c.stop()
    assert [(m.id, m.payload) for m in c.acked] == [(sent.id, sent.payload)]


@scenario()
async def subscribe_before_publish(backend: Backend, name: str) -> None:
    """A running subscription receives what is published after it started."""
    await prepare_topic(backend, name)
    c = Collector(backend.subscriber(name + "-g"), name)
    await asyncio.sleep(0)  # let the subscription start first
    await _publish(backend, name, *_msgs(3))
    await c.wait(3, backend.features.timeout)
    await c.stop()
    assert sorted(c.payloads()) == [b"m0", b"m1", b"m2"]


@scenario()
async def metadata_roundtrip(backend: Backend, name: str) -> None:
    """Metadata (unicode, the standard keys, the partition key) and the id survive the trip."""
    await prepare_topic(backend, name)
    meta = {Meta.EVENT_TYPE: "culture.v1.ReviewCreated", Meta.CORRELATION_ID: "job-42",
            Meta.PARTITION_KEY: "user-7", "note": "Cinéma ✓ \"quoted\""}
    sent = Message(b"{}", meta)
    await _publish(backend, name, sent)
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(1, backend.features.timeout)
    await c.stop()
    got = c.acked[0]
    assert got.id == sent.id
    assert {k: got.metadata.get(k) for k in meta} == meta, got.metadata


@scenario()
async def many_messages(backend: Backend, name: str) -> None:
    """1000 messages in one publish: every one delivered exactly once."""
    await prepare_topic(backend, name)
    sent = _msgs(1000, keys=16)
    await _publish(backend, name, *sent)
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(1000, backend.features.timeout)
    await c.stop()
    ids = [m.id for m in c.acked]
    assert len(ids) == len(set(ids)) == 1000
    assert set(ids) == {m.id for m in sent}


@scenario()
async def ordering_per_key(backend: Backend, name: str) -> None:
    """Messages with the same key arrive in publish order (one subscriber)."""
    await prepare_topic(backend, name)
    await _publish(backend, name, *_msgs(300, keys=3))
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(300, backend.features.timeout)
    await c.stop()
    _assert_key_order(c.acked)


def _assert_key_order(messages: list[Message]) -> None:
    per_key: dict[str | None, list[int]] = collections.defaultdict(list)
    for m in messages:
        per_key[m.key].append(int(m.payload.decode().lstrip("m")))
    for key, seq in per_key.items():
        assert seq == sorted(seq), f"key {key}: out of order {seq[:20]}..."


@scenario("consumer_groups", "ordering_per_key")
async def ordering_per_key_in_group(backend: Backend, name: str) -> None:
    """With two members in a group, each key still arrives in order, at one member."""
    await prepare_topic(backend, name)
    a = Collector(backend.subscriber(name + "-g"), name)
    b = Collector(backend.subscriber(name + "-g"), name)
    await _publish(backend, name, *_msgs(400, keys=8))
    await wait_until(lambda: len(a.acked) + len(b.acked) >= 400, backend.features.timeout, "400 messages")
    await a.stop()
    await b.stop()
    _assert_key_order(a.acked)
    _assert_key_order(b.acked)


@scenario("consumer_groups")
async def group_members_share(backend: Backend, name: str) -> None:
    """Two subscribers in one group share the messages: all delivered, none twice, both busy."""
    await prepare_topic(backend, name)
    a = Collector(backend.subscriber(name + "-g"), name)
    b = Collector(backend.subscriber(name + "-g"), name)
    sent: list[Message] = []
    # publish in waves until both members got work (a real broker needs a rebalance first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + backend.features.timeout
    wave = 0
    while not (a.acked and b.acked):
        assert loop.time() < deadline, f"one member got nothing: a={len(a.acked)} b={len(b.acked)}"
        batch = _msgs(20, keys=20, prefix=f"w{wave}-")
        wave += 1
        sent += batch
        await _publish(backend, name, *batch)
        await asyncio.sleep(0.2)
    await wait_until(lambda: len(a.acked) + len(b.acked) >= len(sent), backend.features.timeout,
                     f"{len(sent)} messages")
    await a.stop()
    await b.stop()
    ids = [m.id for m in a.acked + b.acked]
    assert len(ids) == len(set(ids)), "a message was delivered twice in one group"
    assert set(ids) == {m.id for m in sent}


@scenario("consumer_groups")
async def groups_each_get_everything(backend: Backend, name: str) -> None:
    """Two groups on one topic each receive every message."""
    await prepare_topic(backend, name)
    sent = _msgs(50, keys=5)
    await _publish(backend, name, *sent)
    a = Collector(backend.subscriber(name + "-a"), name)
    b = Collector(backend.subscriber(name + "-b"), name)
    await a.wait(50, backend.features.timeout)
    await b.wait(50, backend.features.timeout)
    await a.stop()
    await b.stop()
    assert {m.id for m in a.acked} == {m.id for m in b.acked} == {m.id for m in sent}


@scenario("redelivery_after_nack")
async def nack_redelivers(backend: Backend, name: str) -> None:
    """A nacked message comes again; the others come once."""
    await prepare_topic(backend, name)
    sent = _msgs(10, keys=2)
    victim = sent[3].id
    nacked: list[str] = []

    def decide(m: Message) -> bool:
        if m.id == victim and not nacked:
            nacked.append(m.id)
            return False
        return True

    await _publish(backend, name, *sent)
    c = Collector(backend.subscriber(name + "-g"), name, decide)
    await c.wait(10, backend.features.timeout)
    await c.stop()
    assert nacked == [victim]
    assert sorted(m.id for m in c.acked) == sorted(m.id for m in sent)
    assert [m.id for m in c.received].count(victim) == 2


@scenario("redelivery_after_nack")
async def nack_until_ack(backend: Backend, name: str) -> None:
    """A message nacked three times is delivered a fourth time and then acked; nothing is lost."""
    await prepare_topic(backend, name)
    tries: collections.Counter[str] = collections.Counter()

    def decide(m: Message) -> bool:
        tries[m.id] += 1
        return tries[m.id] > 3

    sent = Message(b"stubborn")
    await _publish(backend, name, sent)
    c = Collector(backend.subscriber(name + "-g"), name, decide)
    await c.wait(1, backend.features.timeout)
    await c.stop()
    assert tries[sent.id] == 4


@scenario("persistent")
async def resume_after_restart(backend: Backend, name: str) -> None:
    """A restarted subscriber resumes after the group's last ack: nothing old, nothing lost."""
    await prepare_topic(backend, name)
    first = _msgs(10, keys=3, prefix="a")
    await _publish(backend, name, *first)
    c1 = Collector(backend.subscriber(name + "-g"), name)
    await c1.wait(10, backend.features.timeout)
    await c1.stop()
    second = _msgs(10, keys=3, prefix="b")
    await _publish(backend, name, *second)
    c2 = Collector(backend.subscriber(name + "-g"), name)
    await c2.wait(10, backend.features.timeout)
    await c2.stop()
    assert {m.id for m in c2.acked} == {m.id for m in second}


@scenario()
async def new_group_starts_at_beginning(backend: Backend, name: str) -> None:
    """A group that never consumed gets what was published before it existed."""
    await prepare_topic(backend, name)
    await _publish(backend, name, *_msgs(5))
    c = Collector(backend.subscriber(name + "-late"), name)
    await c.wait(5, backend.features.timeout)
    await c.stop()


@scenario()
async def close_while_consuming(backend: Backend, name: str) -> None:
    """close() during an idle wait ends the iteration cleanly and promptly."""
    await prepare_topic(backend, name)
    await _publish(backend, name, Message(b"one"))
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(1, backend.features.timeout)
    await c.stop(within=10.0)
    assert c.task.done() and c.error is None


@scenario("persistent")
async def close_waits_for_in_flight(backend: Backend, name: str) -> None:
    """close() waits for a message being handled, then commits its ack: it is not delivered again."""
    await prepare_topic(backend, name)
    held: list[Message] = []
    release = asyncio.Event()

    async def decide(m: Message) -> bool:
        held.append(m)
        await release.wait()
        return True

    await _publish(backend, name, Message(b"slow"))
    sub = backend.subscriber(name + "-g")
    c = Collector(sub, name, decide)
    await wait_until(lambda: bool(held), backend.features.timeout, "the slow message")
    closing = asyncio.create_task(sub.close())
    await asyncio.sleep(0.05)
    assert not closing.done(), "close() returned while a message was in flight"
    release.set()
    await asyncio.wait_for(closing, backend.features.timeout)
    await c.stop()
    assert held[0].state is Settlement.ACKED
    marker = Message(b"marker")
    await _publish(backend, name, marker)
    c2 = Collector(backend.subscriber(name + "-g"), name)
    await c2.wait(1, backend.features.timeout)
    await c2.stop()
    assert c2.acked[0].id == marker.id, "the acked message was delivered again after close"


@scenario("persistent", "redelivery_of_abandoned")
async def abandoned_message_redelivered(backend: Backend, name: str) -> None:
    """A message handed out but never settled (its consumer gave up) reaches the next subscriber."""
    await prepare_topic(backend, name)
    sent = Message(b"abandoned")
    await _publish(backend, name, sent)
    got: list[Message] = []
    sub = backend.subscriber(name + "-g", close_timeout=0.2)

    async def take() -> None:
        async for m in sub.subscribe(name):
            got.append(m)  # never settled: its handler "crashed"

    task = asyncio.create_task(take())
    await wait_until(lambda: bool(got), backend.features.timeout, "the first delivery")
    await sub.close()
    await asyncio.wait_for(task, backend.features.timeout)
    c = Collector(backend.subscriber(name + "-g"), name)
    await c.wait(1, backend.features.timeout)
    await c.stop()
    assert c.acked[0].id == sent.id
