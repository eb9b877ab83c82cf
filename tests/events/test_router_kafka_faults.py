"""The router on real Kafka under faults: an outage outlasted by the retry budget while other keys
of the same partition go on, a handler slower than max_poll_interval_ms, and a rebalance while a
handler hangs (its handling is cancelled, never run by two members at once)."""

from __future__ import annotations

import asyncio
import time

import pytest

from culture_events import Message, Meta
from culture_events.backends import kafka as kafka_backend
from culture_events.backends.kafka import KafkaPublisher, KafkaSubscriber
from culture_events.backends.memory import MemoryBroker, MemoryPublisher
from culture_events.middleware import default_middleware
from culture_events.router import Router
from culture_events.testing import wait_until
from culture_runtime.worker import WorkerSettings

pytestmark = pytest.mark.integration


async def _topic(bootstrap: str, topic: str, partitions: int = 1) -> KafkaPublisher:
    pub = KafkaPublisher(bootstrap)
    await pub.create_topic(topic, partitions=partitions)
    return pub


def _keyed(key: str, n: int) -> list[Message]:
    return [Message(f"{key}{i}".encode(), {Meta.PARTITION_KEY: key}) for i in range(n)]


async def test_a_transient_outage_is_outlasted_while_other_keys_go_on(kafka_bootstrap: str,
                                                                     unique: str) -> None:
    """A handler failing for longer than the old retries (0.2 + 0.4 + 0.8 s) with the worker's
    default retry settings: the message ends handled, not poisoned; the other key on the same
    (single) partition is handled meanwhile."""
    pub = await _topic(kafka_bootstrap, f"{unique}.in")
    poison = MemoryBroker()
    router = Router(concurrency=1)
    router.add_middleware(*default_middleware(
        poison_publisher=MemoryPublisher(poison), poison_topic="poison",
        retry=WorkerSettings(retry_initial_seconds=0.2).retry(), timeout_seconds=10))
    outage_over = asyncio.Event()
    attempts = 0
    handled: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        nonlocal attempts
        if msg.key == "a":
            attempts += 1
            if not outage_over.is_set():
                raise ConnectionError("smtp away")
        handled.append(msg.payload.decode())
        return []

    router.add_consumer_handler("h", f"{unique}.in", KafkaSubscriber(kafka_bootstrap, f"{unique}-g"), handler)
    task = asyncio.create_task(router.run())
    try:
        await pub.publish(f"{unique}.in", *_keyed("a", 2))
        await wait_until(lambda: attempts >= 1, 60, "a's first attempt")
        await pub.publish(f"{unique}.in", *_keyed("b", 3))
        await wait_until(lambda: attempts >= 5, 30, "a's 5th attempt, past the old retries")
        assert handled == ["b0", "b1", "b2"]
        outage_over.set()
        await wait_until(lambda: len(handled) == 5, 60, "a handled after the outage")
        assert handled[3:] == ["a0", "a1"]
        assert poison.messages("poison") == []
    finally:
        await router.close()
        await task
        await pub.close()


async def test_a_handler_slower_than_max_poll_interval_keeps_the_member_in_its_group(
        kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every in-flight slot busy in a handler for 3x max_poll_interval_ms: the subscription polls
    with its partitions paused, so the member is not evicted (no revocation) and the message is
    handled once."""
    revocations: list[list[int]] = []
    original = kafka_backend._Subscription.on_partitions_revoked

    async def counting(self: kafka_backend._Subscription, revoked: list) -> None:
        if revoked:  # (the first join revokes nothing)
            revocations.append([tp.partition for tp in revoked])
        await original(self, revoked)

    monkeypatch.setattr(kafka_backend._Subscription, "on_partitions_revoked", counting)
    pub = await _topic(kafka_bootstrap, f"{unique}.in")
    sub = KafkaSubscriber(kafka_bootstrap, f"{unique}-g", max_in_flight=1, max_poll_interval_ms=2000,
                          session_timeout_ms=6000, rebalance_timeout_ms=20000, revoke_timeout=5)
    router = Router(concurrency=1)
    handled: list[str] = []

    async def slow(msg: Message) -> list[Message]:
        started = time.monotonic()
        await wait_until(lambda: time.monotonic() - started > 6, 20, "3x max_poll_interval_ms")
        handled.append(msg.payload.decode())
        return []

    router.add_consumer_handler("slow", f"{unique}.in", sub, slow)
    task = asyncio.create_task(router.run())
    try:
        await pub.publish(f"{unique}.in", Message(b"m0", {Meta.PARTITION_KEY: "k"}),
                          Message(b"m1", {Meta.PARTITION_KEY: "k"}))
        await wait_until(lambda: len(handled) == 2, 60, "both slow messages")
        assert handled == ["m0", "m1"]
        assert revocations == []
    finally:
        await router.close()
        await task
        await pub.close()


async def test_a_rebalance_cancels_a_hanging_handler_so_two_members_never_run_one_message(
        kafka_bootstrap: str, unique: str) -> None:
    """Member A hangs in its handler; member B joins the group. A's revocation lets the handler
    run `revoke_timeout`, then cancels it (the message is nacked, not committed), so the new owner
    handles it again, and at no time do two members handle it together."""
    pub = await _topic(kafka_bootstrap, f"{unique}.in", partitions=2)
    active: set[str] = set()
    overlaps: list[str] = []
    cancelled: list[str] = []
    handled: list[tuple[str, str]] = []
    hang_once = {"first": True}

    def member(name: str) -> tuple[Router, KafkaSubscriber]:
        sub = KafkaSubscriber(kafka_bootstrap, f"{unique}-g", revoke_timeout=1.0, cancel_grace=2.0,
                              session_timeout_ms=6000, rebalance_timeout_ms=15000)
        router = Router(concurrency=2)

        async def handler(msg: Message) -> list[Message]:
            if msg.id in active:
                overlaps.append(msg.id)
            active.add(msg.id)
            try:
                if hang_once["first"]:
                    hang_once["first"] = False
                    try:
                        await asyncio.Event().wait()  # hangs until cancelled
                    except asyncio.CancelledError:
                        cancelled.append(name)
                        raise
                handled.append((name, msg.payload.decode()))
                return []
            finally:
                active.discard(msg.id)

        router.add_consumer_handler("h", f"{unique}.in", sub, handler)
        return router, sub

    router_a, _ = member("a")
    task_a = asyncio.create_task(router_a.run())
    router_b: Router | None = None
    task_b: asyncio.Task[None] | None = None
    try:
        await pub.publish(f"{unique}.in", Message(b"stuck", {Meta.PARTITION_KEY: "k"}))
        await wait_until(lambda: bool(active), 60, "a hangs in its handler")
        router_b, _ = member("b")
        task_b = asyncio.create_task(router_b.run())
        await wait_until(lambda: cancelled == ["a"], 60, "a's handler cancelled by the revocation")
        await wait_until(lambda: [p for _, p in handled] == ["stuck"], 60,
                         "the message handled by the new owner")
        assert overlaps == []
    finally:
        for router, task in ((router_a, task_a), (router_b, task_b)):
            if router is not None and task is not None:
                await router.close()
                await task
        await pub.close()
