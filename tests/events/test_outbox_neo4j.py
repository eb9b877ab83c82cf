"""The Neo4j outbox on the stack's Neo4j: writes in the caller's transaction, serialised lease claims
shared by concurrent relays, relays stopped and restarted mid-stream, and Kafka going away while
services write (the real `culture events relay --store neo4j` process behind a proxy).

Every test has its own outbox label (its constraints and indexes are dropped afterwards)."""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _outbox_support import create_topic, headers, kafka_bootstrap, read_topic, records_on_topic, up
from neo4j import AsyncDriver

from culture_events import correlation
from culture_events.backends.kafka import KafkaPublisher
from culture_events.backends.memory import MemoryBroker, MemoryPublisher
from culture_events.errors import EventsError
from culture_events.message import Message, Meta
from culture_events.outbox.neo4j import Neo4jOutbox, Neo4jStore, driver_from_uri
from culture_events.outbox.relay import Relay
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def neo4j_uri() -> str:
    s = up("neo4j")
    return f"bolt://{s['user']}:{s['password']}@{s['host']}:{s['port']}"


@pytest.fixture
async def driver(neo4j_uri: str) -> AsyncIterator[AsyncDriver]:
    drv = driver_from_uri(neo4j_uri)
    yield drv
    await drv.close()


async def _drop(driver: AsyncDriver, box: Neo4jOutbox) -> None:
    await box.drop(driver)


@pytest.fixture
async def outbox(driver: AsyncDriver, unique: str) -> AsyncIterator[Neo4jOutbox]:
    box = Neo4jOutbox(f"Outbox_{unique}")
    await box.ensure_schema(driver)
    yield box
    await _drop(driver, box)


async def _count(driver: AsyncDriver, box: Neo4jOutbox) -> int:
    records, _, _ = await driver.execute_query(f"MATCH (e:`{box.label}`) RETURN count(e) AS n",
                                               database_=box.database)
    return int(records[0]["n"])


async def _empty(driver: AsyncDriver, box: Neo4jOutbox) -> bool:
    return await _count(driver, box) == 0


async def _publish(driver: AsyncDriver, box: Neo4jOutbox, topic: str, *messages: Message) -> None:
    async def body(tx: Any) -> None:
        await box.publisher(tx).publish(topic, *messages)

    async with driver.session(database=box.database) as session:
        await session.execute_write(body)


async def test_ensure_schema_is_idempotent_and_safe_concurrently(driver: AsyncDriver, unique: str) -> None:
    box = Neo4jOutbox(f"Outbox_{unique}")
    try:
        await asyncio.gather(*(box.ensure_schema(d) for d in [driver, driver, driver]))
        await box.ensure_schema(driver)
        records, _, _ = await driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS n")
        assert {f"{box.label.lower()}_id", f"{box.label.lower()}_seq_key"} <= set(records[0]["n"])
    finally:
        await _drop(driver, box)


async def test_publish_outside_a_transaction_is_refused(driver: AsyncDriver, outbox: Neo4jOutbox) -> None:
    async with driver.session(database=outbox.database) as session:
        with pytest.raises(EventsError, match="transaction"):
            await outbox.publisher(session).publish("t", Message(b"x"))
        tx = await session.begin_transaction()
        await tx.rollback()
        with pytest.raises(EventsError, match="transaction"):
            await outbox.publisher(tx).publish("t", Message(b"x"))


async def test_entries_follow_the_callers_transaction(driver: AsyncDriver, outbox: Neo4jOutbox,
                                                      unique: str) -> None:
    async def failing(tx: Any) -> None:
        await tx.run("CREATE (:Thing {ns: $ns})", ns=unique)
        await outbox.publisher(tx).publish("t", Message(b"rolled back", {Meta.PARTITION_KEY: "u1"}))
        raise RuntimeError("the service's own write failed")

    async with driver.session(database=outbox.database) as session:
        with pytest.raises(RuntimeError):
            await session.execute_write(failing)
    assert await _count(driver, outbox) == 0
    records, _, _ = await driver.execute_query("MATCH (n:Thing {ns: $ns}) RETURN count(n) AS n", ns=unique)
    assert records[0]["n"] == 0

    with correlation.bound("job-9"):
        await _publish(driver, outbox, "t", Message(b"a", {Meta.PARTITION_KEY: "u1"}),
                       Message(b"b", {Meta.PARTITION_KEY: "u1"}), Message(b"c"))
        await _publish(driver, outbox, "t", Message(b"d", {Meta.PARTITION_KEY: "u1"}))
    records, _, _ = await driver.execute_query(
        f"MATCH (e:`{outbox.label}`) RETURN e.key AS key, e.seq AS seq, e.metadata AS meta, "
        "e.payload AS payload ORDER BY e.at, e.ord")
    assert [(r["key"], r["seq"], bytes(r["payload"])) for r in records] == [
        ("u1", 1, b"a"), ("u1", 2, b"b"), (None, None, b"c"), ("u1", 3, b"d")]
    assert all('"correlation_id":"job-9"' in r["meta"] for r in records)


async def test_relay_publishes_and_deletes(neo4j_uri: str, driver: AsyncDriver, outbox: Neo4jOutbox) -> None:
    broker = MemoryBroker()
    relay = Relay(Neo4jStore(neo4j_uri, outbox.label), MemoryPublisher(broker), poll_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        with correlation.bound("job-3"):
            await _publish(driver, outbox, "graph.follow-created", Message(b"f", id="m1"))
        started = time.monotonic()
        await wait_until(lambda: len(broker.messages("graph.follow-created")) == 1, 30,
                         "the relayed message", interval=0.05)
        assert time.monotonic() - started < 5
        (msg,) = broker.messages("graph.follow-created")
        assert (msg.id, msg.payload, msg.metadata[Meta.CORRELATION_ID]) == ("m1", b"f", "job-3")
        await wait_until(lambda: _empty(driver, outbox), 10, "the relayed entry to be deleted", interval=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _write(driver: AsyncDriver, box: Neo4jOutbox, topic: str, keys: list[str], per_key: int,
                 writers: int = 3, start: int = 0) -> list[str]:
    """Concurrent writers, each committing one small transaction per event; ids in write order."""
    ids: list[str] = []

    async def writer(w: int) -> None:
        for i in range(start, start + per_key):
            for key in keys[w::writers]:
                msg = Message(f"{key}:{i}".encode(), {Meta.PARTITION_KEY: key})
                await _publish(driver, box, topic, msg)
                ids.append(msg.id)

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return ids


def _per_key(records: list[Any]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for r in records:  # partition by partition: the order within a key is the write order
        key, i = r.value.decode().split(":")
        seen[key].append(int(i))
    return seen


async def test_three_relays_publish_each_entry_exactly_once_in_key_order(
        neo4j_uri: str, driver: AsyncDriver, outbox: Neo4jOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.neo4j-outbox"
    await create_topic(bootstrap, topic, partitions=3)
    keys, per_key = [f"user-{k}" for k in range(9)], 30  # 270 entries
    relays = [Relay(Neo4jStore(neo4j_uri, outbox.label), lambda: KafkaPublisher(bootstrap),
                    batch_size=8, poll_interval=0.1) for _ in range(3)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        ids = await _write(driver, outbox, topic, keys, per_key)
        await wait_until(lambda: _empty(driver, outbox), 120, "the relays to drain the outbox", interval=0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert sum(r.stats.published for r in relays) == len(ids)
    assert sum(1 for r in relays if r.stats.published) >= 2, [r.stats for r in relays]
    assert await records_on_topic(bootstrap, topic) == len(ids), "an entry was published twice"
    records = await read_topic(bootstrap, topic)
    assert sorted(headers(r)[Meta.EVENT_ID] for r in records) == sorted(ids)
    seen = _per_key(records)
    assert all(seen[k] == list(range(per_key)) for k in keys), {k: v[:10] for k, v in seen.items()}


async def test_relays_stopped_and_restarted_mid_stream_publish_each_entry_once(
        neo4j_uri: str, driver: AsyncDriver, outbox: Neo4jOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.neo4j-restarts"
    await create_topic(bootstrap, topic, partitions=2)
    keys, per_round, rounds = [f"user-{k}" for k in range(4)], 10, 4
    ids: list[str] = []
    published = 0
    for n in range(rounds):  # a relay generation per round, stopped while entries still wait
        relay = Relay(Neo4jStore(neo4j_uri, outbox.label), lambda: KafkaPublisher(bootstrap),
                      batch_size=5, poll_interval=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        ids += await _write(driver, outbox, topic, keys, per_round, writers=2, start=n * per_round)
        await wait_until(lambda r=relay: r.stats.published > 0, 60, "the relay to publish", interval=0.05)
        stop.set()
        await asyncio.wait_for(task, 60)
        published += relay.stats.published
    final = Relay(Neo4jStore(neo4j_uri, outbox.label), lambda: KafkaPublisher(bootstrap), poll_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(final.run(stop))
    try:
        await wait_until(lambda: _empty(driver, outbox), 120, "the last relay to drain", interval=0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert published + final.stats.published == len(ids)
    assert await records_on_topic(bootstrap, topic) == len(ids), "an entry was published twice"
    seen = _per_key(await read_topic(bootstrap, topic))
    assert all(seen[k] == list(range(per_round * rounds)) for k in keys), seen


class _Lines:
    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


async def test_the_relay_command_with_kafka_down_then_up_publishes_each_entry_once_in_order(
        neo4j_uri: str, driver: AsyncDriver, outbox: Neo4jOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    topic = f"{unique}.neo4j-kafka-down"
    await create_topic(bootstrap, topic, partitions=2)
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    relay = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "culture"), "events", "relay", "--store", "neo4j", "--neo4j-uri", neo4j_uri,
        "--label", outbox.label, "--brokers", proxy.bootstrap, "--stall-warning", "2",
        "--poll-interval", "0.2", "--report-every", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert relay.stderr is not None
    out = _Lines(relay.stderr)
    keys = [f"user-{k}" for k in range(5)]
    try:
        before = await _write(driver, outbox, topic, keys, 4, writers=1)
        await wait_until(lambda: _empty(driver, outbox), 60, "the first events to be relayed", interval=0.05)
        assert await records_on_topic(bootstrap, topic) == len(before)

        await proxy.close()  # Kafka is down for the relay
        started = time.monotonic()
        during = await _write(driver, outbox, topic, keys, 16, writers=1, start=4)
        assert time.monotonic() - started < 30, "outbox writes must not wait for Kafka"
        await wait_until(lambda: out.has("publishing stalled"), 60, "the relay to notice Kafka is down",
                         interval=0.05)
        assert await records_on_topic(bootstrap, topic) == len(before)

        await proxy.open()  # Kafka is back
        await wait_until(lambda: _empty(driver, outbox), 120, "the outbox to drain after Kafka came back",
                         interval=0.1)
        total = len(before) + len(during)
        assert await records_on_topic(bootstrap, topic) == total, "an event was published twice"
        records = await read_topic(bootstrap, topic)
        assert sorted(headers(r)[Meta.EVENT_ID] for r in records) == sorted(before + during)
        seen = _per_key(records)
        assert all(seen[k] == list(range(20)) for k in keys), seen
        relay.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(relay.wait(), 30) == 0
        await out.task
        assert out.has(f"stopped after publishing {total}"), out.lines
    finally:
        if relay.returncode is None:
            relay.kill()
            await relay.wait()
        await proxy.close()
