"""Outbox entries Kafka refuses (a 2 MB payload, a topic that does not exist: auto-creation is off
on the stack's broker) become dead after their attempts while the relay goes on with everything
else; a dead entry holds back only the later entries of its key; `culture events outbox status` and
the metrics show them. And the PostgreSQL relay keeps no transaction open while Kafka is away."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from _outbox_support import create_topic, headers, kafka_bootstrap, read_topic, up
from motor.motor_asyncio import AsyncIOMotorClient
from prometheus_client import REGISTRY

from culture_events.backends.kafka import relay_publisher
from culture_events.message import Message, Meta
from culture_events.outbox.mongo import MongoOutbox, MongoStore
from culture_events.outbox.neo4j import Neo4jOutbox, Neo4jStore, driver_from_uri
from culture_events.outbox.postgres import PostgresOutbox, PostgresStore
from culture_events.outbox.relay import Relay
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
BIG = b"x" * (2 * 1024 * 1024)  # over Kafka's 1 MB message size


def _batch(topic: str, missing: str) -> list[tuple[str, Message]]:
    """In outbox order: a refused entry of key a (too large) and one of key c (no such topic), each
    followed by a good entry of its key, and good entries of other keys."""
    return [
        (topic, Message(BIG, {Meta.PARTITION_KEY: "a"}, id="a1-too-large")),
        (topic, Message(b"a2", {Meta.PARTITION_KEY: "a"}, id="a2-behind-dead")),
        (topic, Message(b"b1", {Meta.PARTITION_KEY: "b"}, id="b1")),
        (missing, Message(b"c1", {Meta.PARTITION_KEY: "c"}, id="c1-no-topic")),
        (topic, Message(b"c2", {Meta.PARTITION_KEY: "c"}, id="c2-behind-dead")),
        (topic, Message(b"d1", {Meta.PARTITION_KEY: "d"}, id="d1")),
    ]


Store = PostgresStore | MongoStore | Neo4jStore


async def _run(store: Store, bootstrap: str) -> tuple[Relay, asyncio.Event, asyncio.Task[None]]:
    lines: list[str] = []
    relay = Relay(store, lambda: relay_publisher(bootstrap, "relay-dead-test"), poll_interval=0.2,
                  report=lines.append, report_every=0.5)
    stop = asyncio.Event()
    return relay, stop, asyncio.create_task(relay.run(stop))


async def _check_dead(store: Store, relay: Relay, bootstrap: str, topic: str,
                      status: Callable[[], Awaitable[str]]) -> None:
    await wait_until(lambda: relay.stats.dead == 2, 90, "the two refused entries to be dead")
    await wait_until(lambda: _on_topic(bootstrap, topic, {"b1", "d1"}), 60, "the good entries published")

    async def settled() -> bool:  # (the published entries are deleted just after the publish)
        counts = await store.counts()
        return counts["dead"] == 2 and counts["pending"] == 2  # a2 and c2 wait behind their dead ones

    await wait_until(settled, 30, "2 dead and 2 pending entries")
    dead = await store.dead()
    assert {d["message_id"] for d in dead} == {"a1-too-large", "c1-no-topic"}
    assert all(d["attempts"] == 2 for d in dead)
    # the gauge is the store's count as of the relay's last refresh (after a refusal, and every
    # report_every seconds): it may be a refresh behind the store for a moment
    await wait_until(lambda: REGISTRY.get_sample_value("culture_outbox_dead_entries",
                                                       {"outbox": store.describe}) == 2, 10,
                     "the dead-entries gauge to show the 2 dead entries", interval=0.1)
    out = await status()
    assert "dead 2" in out and "a1-too-large" in out and "c1-no-topic" in out and "does not exist" in out


async def _on_topic(bootstrap: str, topic: str, expected: set[str]) -> bool:
    ids = [headers(r)[Meta.EVENT_ID] for r in await read_topic(bootstrap, topic)]
    return sorted(ids) == sorted(expected)


async def _cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "culture"), "events", "outbox", "status", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_postgres_refused_entries_die_and_the_relay_goes_on(
        postgres_dsn: str, conn: asyncpg.Connection, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic, missing = f"{unique}.out", f"{unique}.never-created"
    await create_topic(bootstrap, topic)
    box = PostgresOutbox(f"outbox_{unique}")
    await box.ensure_schema(conn)
    for t, msg in _batch(topic, missing):
        async with conn.transaction():
            await box.publisher(conn).publish(t, msg)
    store = PostgresStore(postgres_dsn, box, max_attempts=2, max_backoff=0.2)
    relay, stop, task = await _run(store, bootstrap)
    try:
        await _check_dead(store, relay, bootstrap, topic,
                          lambda: _cli("--store", "postgres", "--dsn", postgres_dsn, "--table", box.table))
        async with conn.transaction():
            await box.publisher(conn).publish(topic, Message(b"e1", {Meta.PARTITION_KEY: "e"}, id="e1"))
        await wait_until(lambda: _on_topic(bootstrap, topic, {"b1", "d1", "e1"}), 60, "a later entry")
    finally:
        stop.set()
        await task
        await conn.execute(f"DROP TABLE {box.qtable}")


@pytest.fixture
async def mongo(unique: str) -> AsyncIterator[tuple[str, AsyncIOMotorClient]]:
    uri = up("mongo")["uri"]
    client = AsyncIOMotorClient(uri)
    yield uri, client
    await client.drop_database(unique)
    client.close()


async def test_mongo_refused_entries_die_and_the_relay_goes_on(mongo: tuple[str, AsyncIOMotorClient],
                                                               unique: str) -> None:
    uri, client = mongo
    bootstrap = kafka_bootstrap()
    topic, missing = f"{unique}.out", f"{unique}.never-created"
    await create_topic(bootstrap, topic)
    box = MongoOutbox(client[unique], "outbox")
    await box.ensure_schema()
    for t, msg in _batch(topic, missing):
        async with await client.start_session() as session, session.start_transaction():
            await box.publisher(session).publish(t, msg)
    store = MongoStore(uri, unique, "outbox", max_attempts=2, max_backoff=0.2)
    relay, stop, task = await _run(store, bootstrap)
    try:
        await _check_dead(store, relay, bootstrap, topic,
                          lambda: _cli("--store", "mongo", "--uri", uri, "--database", unique,
                                       "--collection", "outbox"))
    finally:
        stop.set()
        await task


async def test_neo4j_refused_entries_die_and_the_relay_goes_on(unique: str) -> None:
    settings = up("neo4j")
    uri = f"bolt://{settings['user']}:{settings['password']}@{settings['host']}:{settings['port']}"
    bootstrap = kafka_bootstrap()
    topic, missing = f"{unique}.out", f"{unique}.never-created"
    await create_topic(bootstrap, topic)
    box = Neo4jOutbox(f"Outbox_{unique}")
    driver = driver_from_uri(uri)
    await box.ensure_schema(driver)
    for t, msg in _batch(topic, missing):
        async with driver.session(database=box.database) as session:
            await session.execute_write(lambda tx, t=t, msg=msg: box.publisher(tx).publish(t, msg))
    store = Neo4jStore(uri, box.label, max_attempts=2, max_backoff=0.2)
    relay, stop, task = await _run(store, bootstrap)
    try:
        await _check_dead(store, relay, bootstrap, topic,
                          lambda: _cli("--store", "neo4j", "--neo4j-uri", uri, "--label", box.label))
    finally:
        stop.set()
        await task
        await box.drop(driver)
        await driver.close()


async def _relay_transactions(conn: asyncpg.Connection, app: str) -> list[str]:
    rows = await conn.fetch("SELECT state FROM pg_stat_activity WHERE application_name = $1 "
                            "AND xact_start IS NOT NULL AND state <> 'active'", app)
    return [r["state"] for r in rows]


async def test_postgres_relay_holds_no_transaction_open_while_kafka_is_away(
        postgres_dsn: str, conn: asyncpg.Connection, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.out"
    await create_topic(bootstrap, topic)
    host, port = bootstrap.rsplit(":", 1)
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    box = PostgresOutbox(f"outbox_{unique}")
    await box.ensure_schema(conn)
    app = f"relay-{unique}"
    store = PostgresStore(postgres_dsn, box, application_name=app)
    relay = Relay(store, lambda: relay_publisher(f"127.0.0.1:{proxy.port}", "relay-cut-test"),
                  poll_interval=0.2, stall_warning=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    async def write(tag: str, n: int) -> None:
        for i in range(n):
            async with conn.transaction():
                msg = Message(tag.encode(), {Meta.PARTITION_KEY: f"k{i % 3}"}, id=f"{tag}-{i}")
                await box.publisher(conn).publish(topic, msg)

    try:
        await write("before", 5)
        await wait_until(lambda: relay.stats.published == 5, 60, "the first 5 relayed")
        await proxy.close()  # Kafka is gone from the relay's side
        await write("during", 5)
        await wait_until(lambda: relay.stats.stalls >= 1, 60, "the relay to stall")
        for _ in range(3):  # while it waits for Kafka: no transaction of the relay is open
            assert await _relay_transactions(conn, app) == []
            await wait_until(lambda: relay.stats.stalls >= 1, 1)
        await proxy.open()
        await wait_until(lambda: relay.stats.published == 10, 120, "the rest relayed after Kafka is back")
        every = {f"{tag}-{i}" for tag in ("before", "during") for i in range(5)}
        assert await _on_topic(bootstrap, topic, every)
    finally:
        stop.set()
        await task
        await proxy.close()
        await conn.execute(f"DROP TABLE {box.qtable}")


async def test_postgres_ensure_schema_adds_the_relay_columns_to_an_older_table(
        conn: asyncpg.Connection, unique: str) -> None:
    box = PostgresOutbox(f"outbox_{unique}")
    for stmt in box.base_schema_sql():  # the table as made before the relay kept leases and attempts
        await conn.execute(stmt)
    try:
        async with conn.transaction():
            await box.publisher(conn).publish("t", Message(b"old", {Meta.PARTITION_KEY: "k"}))
        await box.ensure_schema(conn)
        await box.ensure_schema(conn)  # and again: nothing to add
        row = await conn.fetchrow(f"SELECT attempts, lease_until, dead_at FROM {box.qtable}")
        assert row["attempts"] == 0 and row["dead_at"] is None
    finally:
        await conn.execute(f"DROP TABLE {box.qtable}")
