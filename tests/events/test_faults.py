"""Faults that must lose nothing, on the real stack: Kafka unreachable while services write through
the outbox, and a consumer process killed in the middle of handling a message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from _outbox_support import create_topic, headers, kafka_bootstrap, read_topic, records_on_topic

from culture_events.backends.kafka import KafkaPublisher
from culture_events.message import Message, Meta
from culture_events.outbox.postgres import PostgresOutbox
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


class Lines:
    """Collects a child process's output lines as they come (for waiting on a progress line)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


async def _write(conn: asyncpg.Connection, box: PostgresOutbox, topic: str, n: int, tag: str) -> list[str]:
    ids = []
    for i in range(n):
        async with conn.transaction():  # one small transaction per service write
            msg = Message(f"{tag}-{i}".encode(), {Meta.PARTITION_KEY: f"user-{i % 7}"})
            await box.publisher(conn).publish(topic, msg)
        ids.append(msg.id)
    return ids


async def test_kafka_unreachable_while_services_write_loses_nothing_and_duplicates_nothing(
        postgres_dsn: str, conn: asyncpg.Connection, unique: str) -> None:
    """The stack's Kafka is shared by every engineer and test, so it is not stopped here. Instead
    the relay (the real `culture events relay` process) reaches Kafka through a proxy this test
    owns; closing the proxy (listener and open connections) is, from the relay's side, exactly a
    broker that went away: connections refused, requests time out. Writes go on meanwhile;
    after the proxy reopens, every event must be on the topic exactly once."""
    bootstrap = kafka_bootstrap()
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    topic = f"{unique}.kafka-down"
    await create_topic(bootstrap, topic, partitions=2)
    box = PostgresOutbox(f"outbox_{unique}")
    await box.ensure_schema(conn)
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    relay = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "culture"), "events", "relay", "--store", "postgres", "--dsn", postgres_dsn,
        "--table", box.table, "--brokers", f"127.0.0.1:{proxy.port}", "--stall-warning", "2",
        "--poll-interval", "0.5", "--report-every", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert relay.stderr is not None
    out = Lines(relay.stderr)
    try:
        before = await _write(conn, box, topic, 50, "before")
        await wait_until(lambda: _empty(conn, box), 60, "the first 50 events to be relayed", interval=0.05)
        assert await records_on_topic(bootstrap, topic) == 50

        await proxy.close()  # Kafka is down for the relay
        started = time.monotonic()
        during = await _write(conn, box, topic, 200, "during")
        assert time.monotonic() - started < 30, "outbox writes must not wait for Kafka"
        await wait_until(lambda: out.has("publishing stalled"), 60, "the relay to notice Kafka is down",
                         interval=0.05)
        assert await records_on_topic(bootstrap, topic) == 50
        assert await _count(conn, box) >= 200, "the rows stay in the outbox while Kafka is down"

        await proxy.open()  # Kafka is back
        await wait_until(lambda: _empty(conn, box), 120, "the outbox to drain after Kafka came back",
                         interval=0.05)
        await wait_until(lambda: out.has("publishing works again"), 30, "the relay to report recovery",
                         interval=0.05)
        assert await records_on_topic(bootstrap, topic) == 250, "an event was published twice"
        records = await read_topic(bootstrap, topic)
        assert sorted(headers(r)[Meta.EVENT_ID] for r in records) == sorted(before + during)

        relay.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(relay.wait(), 30) == 0
        await out.task
        assert out.has("stopped after publishing 250"), out.lines
    finally:
        if relay.returncode is None:
            relay.kill()
            await relay.wait()
        await proxy.close()
        await conn.execute(f"DROP TABLE IF EXISTS {box.qtable}")


async def _count(conn: asyncpg.Connection, box: PostgresOutbox) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {box.qtable}"))


async def _empty(conn: asyncpg.Connection, box: PostgresOutbox) -> bool:
    return await _count(conn, box) == 0


# a consumer process: a member of the group that prints what it handles; "block" never settles
_CONSUMER = """
import asyncio, sys
from culture_events.backends.kafka import KafkaSubscriber

async def main(bootstrap, group, topic, mode):
    sub = KafkaSubscriber(bootstrap, group, session_timeout_ms=6000)
    print("started", flush=True)
    async for msg in sub.subscribe(topic):
        print("handling", msg.id, flush=True)
        if mode == "block":
            await asyncio.Event().wait()  # stuck in the handler: never acked
        msg.ack()
        print("acked", msg.id, flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


@contextlib.asynccontextmanager
async def _consumer(bootstrap: str, group: str, topic: str, mode: str) -> AsyncIterator[
        tuple[asyncio.subprocess.Process, Lines]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CONSUMER, bootstrap, group, topic, mode,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env={**os.environ})
    assert proc.stdout is not None
    try:
        yield proc, Lines(proc.stdout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_consumer_killed_mid_handling_gets_the_message_redelivered_to_the_group(unique: str) -> None:
    """A consumer process is SIGKILLed while its handler holds a message (not acked, so not
    committed); another member of the same group must receive that message again."""
    bootstrap = kafka_bootstrap()
    topic, group = f"{unique}.kill", f"{unique}-group"
    await create_topic(bootstrap, topic, partitions=1)
    publisher = KafkaPublisher(bootstrap)
    try:
        async with _consumer(bootstrap, group, topic, "block") as (first, first_out):
            await publisher.publish(topic, Message(b"work", id="m-1"))
            await wait_until(lambda: first_out.has("handling m-1"), 90, "the first consumer to take m-1",
                             interval=0.05)
            first.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
        async with _consumer(bootstrap, group, topic, "ack") as (_second, second_out):
            await wait_until(lambda: second_out.has("acked m-1"), 90, "m-1 to be redelivered to the group",
                             interval=0.05)
            await publisher.publish(topic, Message(b"more", id="m-2"))
            await wait_until(lambda: second_out.has("acked m-2"), 30, "the group to go on with m-2",
                             interval=0.05)
    finally:
        await publisher.close()
