"""Helpers and fixtures (re-exported by conftest.py) of the consumer tests: the servers they need,
roles run as `culture serve` subprocesses, consumer groups that start at the end of the shared
topics, and publishing UserRegistered ourselves.

Isolation: every test uses its own users, emails, job ids, consumer groups (hence poison topics) and
Mongo database; the event topics themselves are the shared ones of the platform, so a fresh group is
first committed at the topics' current end (`start_at_end`) and never replays other tests' events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from grpc_health.v1 import health_pb2, health_pb2_grpc

from culture.events.v1 import identity_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events.backends.kafka import KafkaPublisher
from culture_events.codec import encode
from culture_events.message import Message, Meta
from culture_events.testing import wait_until
from culture_stack import registry, stack
from culture_stack.dev import free_port
from culture_stack.ports import HOST, KAFKA
from culture_stack.server import Context

BOOTSTRAP = f"{HOST}:{KAFKA}"
T = TypeVar("T")
#: the current test's topic namespace (CULTURE_TOPIC_NAMESPACE of the roles it starts), set by the
#: autouse `topic_namespace` fixture: a platform running beside the tests never sees their events
NAMESPACE = ""


def ns(topic: str) -> str:
    """An event topic in the current test's namespace."""
    return f"{NAMESPACE}.{topic}" if NAMESPACE else topic


@pytest.fixture(autouse=True)
def topic_namespace(unique: str) -> Iterator[str]:
    """Give every test its own topic namespace."""
    global NAMESPACE
    NAMESPACE = unique
    yield unique
    NAMESPACE = ""


@pytest.fixture(scope="session")
def consumer_servers(stack_ctx: Context) -> Context:
    """Only the servers the consumers use: Kafka, Redis, MongoDB and the SMTP sink."""
    stack.up(stack_ctx, registry.select(["kafka", "redis", "mongo", "smtp"]))
    return stack_ctx


async def start_at_end(group: str, topics: Sequence[str], partitions: int = 3) -> None:
    """Create the topics if needed and commit `group` at their current end (a fresh group then reads
    only what is published from now on, whatever the topics' history)."""
    publisher = KafkaPublisher(BOOTSTRAP, client_id="slice-tests-admin")
    try:
        for topic in topics:
            await publisher.create_topic(topic, partitions)
    finally:
        await publisher.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = []
        for topic in topics:
            async def partitions(t: str = topic) -> set[int] | None:
                # a consumer refreshes metadata only for topics it subscribed to: ask the brokers
                return (await consumer._client.fetch_all_metadata()).partitions_for_topic(t)

            parts = await wait_until(partitions, 30, f"metadata of {topic}", interval=0.3)
            tps += [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)  # a manual assignment: commit() works without joining the group
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


def user_registered(unique: str, *, email: str | None = None) -> identity_events_pb2.UserRegistered:
    """A UserRegistered event for a fresh user."""
    user_id = f"u-{unique}-{uuid.uuid4().hex[:6]}"
    return identity_events_pb2.UserRegistered(user_id=user_id, username=f"user_{unique}",
                                              email=email or f"{user_id}@example.org",
                                              display_name=f"User {unique}")


async def publish_event(event: Any, *, job_id: str, event_id: str | None = None) -> Message:
    """Publish an event the way a relay does (keyed, the job id as correlation id), in the namespace."""
    msg = encode(event, key=key_of(event), event_id=event_id, metadata={Meta.CORRELATION_ID: job_id})
    publisher = KafkaPublisher(BOOTSTRAP, client_id="slice-tests")
    try:
        await publisher.publish(ns(topic_of(event)), msg.copy())
    finally:
        await publisher.close()
    return msg


class Role:
    """`culture serve SERVICE --role ROLE` as a subprocess with its own env; output to a log file."""

    def __init__(self, service: str, role: str, env: dict[str, str], log_dir: Path) -> None:
        self.service, self.role = service, role
        self.port = free_port()
        self.env = {**os.environ, "CULTURE_TOPIC_NAMESPACE": NAMESPACE, **env,
                    "CULTURE_GRPC_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self.log = log_dir / f"{service}-{role}-{uuid.uuid4().hex[:4]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Role:
        culture = Path(sys.executable).with_name("culture")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(culture), "serve", self.service, "--role", self.role],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def serving(self, within: float = 60.0) -> None:
        """Wait until its gRPC health says SERVING."""
        async def check() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.service} {self.role} exited ({self.proc.returncode}):\n"
                                     f"{self.output()[-3000:]}")
            try:
                async with grpc.aio.insecure_channel(f"{HOST}:{self.port}") as channel:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1)
                    return reply.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.aio.AioRpcError:
                return False

        await wait_until(check, within, f"{self.service} {self.role} to serve", interval=0.2)

    def kill(self) -> None:
        """SIGKILL: a crash, no graceful anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 30s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest_asyncio.fixture
async def roles(tmp_path: Path) -> AsyncIterator[Callable[..., Role]]:
    """Start roles as subprocesses: `role = roles("mailer", "worker", {"CULTURE_...": ...})`; all are
    stopped at the end of the test (their logs stay under tmp_path)."""
    started: list[Role] = []

    def start(service: str, role: str, env: dict[str, str] | None = None) -> Role:
        r = Role(service, role, env or {}, tmp_path).start()
        started.append(r)
        return r

    yield start
    for r in started:
        with contextlib.suppress(Exception):
            r.stop()


class TopicWatch:
    """Everything published to some topics from now on, collected in the background."""

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        self.group = f"slice-watch-{uuid.uuid4().hex[:10]}"
        self.messages: list[tuple[str, Message]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicWatch:
        await start_at_end(self.group, self.topics)
        self._consumer = AIOKafkaConsumer(*self.topics, bootstrap_servers=BOOTSTRAP, group_id=self.group,
                                          enable_auto_commit=False, auto_offset_reset="earliest")
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        from culture_events.backends.kafka import from_record

        assert self._consumer is not None
        async for record in self._consumer:
            self.messages.append((record.topic, from_record(record)))

    def on(self, topic: str, key: str | None = None) -> list[Message]:
        """The messages seen on `topic` (with partition key `key`, if given)."""
        return [m for t, m in self.messages if t == topic and (key is None or m.key == key)]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


@pytest_asyncio.fixture
async def watch() -> AsyncIterator[Callable[[Sequence[str]], Awaitable[TopicWatch]]]:
    """`w = await watch([topics])`: collect what is published to the topics from now on."""
    watches: list[TopicWatch] = []

    async def start(topics: Sequence[str]) -> TopicWatch:
        w = await TopicWatch(topics).start()
        watches.append(w)
        return w

    yield start
    for w in watches:
        await w.stop()


async def topic_ends(topic: str) -> dict[TopicPartition, int]:
    """The end offset of each partition of `topic` now ({} when it does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic) or set()
        return await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
    finally:
        await consumer.stop()


async def consumed_up_to_now(group: str, topic: str, within: float = 60.0) -> None:
    """Wait until `group` has committed past everything published to `topic` before this call."""
    ends = await topic_ends(topic)
    watcher = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
    await watcher.start()
    try:
        async def caught_up() -> bool:
            for tp, end in ends.items():
                if (await watcher.committed(tp) or 0) < end:
                    return False
            return True

        await wait_until(caught_up, within, f"group {group} to consume {topic}", interval=0.3)
    finally:
        await watcher.stop()
