"""The PostgreSQL outbox on the real stack: transactional writes, LISTEN/NOTIFY wake-ups, per-key
order, and several relays on one table publishing each row exactly once to a real Kafka topic."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from _outbox_support import create_topic, headers, kafka_bootstrap, read_topic, records_on_topic

from culture_events import correlation
from culture_events.backends.kafka import KafkaPublisher
from culture_events.backends.memory import MemoryBroker, MemoryPublisher
from culture_events.errors import EventsError
from culture_events.message import Message, Meta
from culture_events.outbox.postgres import OutboxPublisher, PostgresOutbox, PostgresStore
from culture_events.outbox.relay import Relay
from culture_events.testing import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def outbox(conn: asyncpg.Connection, unique: str) -> AsyncIterator[PostgresOutbox]:
    box = PostgresOutbox(f"outbox_{unique}")
    await box.ensure_schema(conn)
    yield box
    await conn.execute(f"DROP TABLE IF EXISTS {box.qtable}")


async def _count(conn: asyncpg.Connection, box: PostgresOutbox) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {box.qtable}"))


async def test_ensure_schema_is_idempotent_and_safe_concurrently(postgres_dsn: str, unique: str) -> None:
    box = PostgresOutbox(f"outbox_{unique}")
    conns = [await asyncpg.connect(postgres_dsn) for _ in range(3)]
    try:
        await asyncio.gather(*(box.ensure_schema(c) for c in conns))
        await box.ensure_schema(conns[0])
        assert await _count(conns[0], box) == 0
    finally:
        await conns[0].execute(f"DROP TABLE IF EXISTS {box.qtable}")
        for c in conns:
            await c.close()


async def test_publish_outside_a_transaction_is_refused(conn: asyncpg.Connection,
                                                        outbox: PostgresOutbox) -> None:
    with pytest.raises(EventsError, match="transaction"):
        await OutboxPublisher(conn, outbox).publish("t", Message(b"x"))


async def test_rows_follow_the_callers_transaction_and_carry_the_correlation_id(
        conn: asyncpg.Connection, outbox: PostgresOutbox) -> None:
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await outbox.publisher(conn).publish("t", Message(b"rolled back"))
            raise RuntimeError("the service's own write failed")
    assert await _count(conn, outbox) == 0

    with correlation.bound("job-42"):
        async with conn.transaction():
            await outbox.publisher(conn).publish("t", Message(b"a", {Meta.PARTITION_KEY: "u1"}),
                                                 Message(b"b"))
    rows = await conn.fetch(f"SELECT partition_key, metadata->>'correlation_id' AS c, message_id, "
                            f"metadata->>'event_id' AS e FROM {outbox.qtable} ORDER BY id")
    assert [(r["partition_key"], r["c"]) for r in rows] == [("u1", "job-42"), (None, "job-42")]
    assert all(r["message_id"] == r["e"] for r in rows)


async def test_relay_wakes_on_notify_not_on_polling(postgres_dsn: str, conn: asyncpg.Connection,
                                                   outbox: PostgresOutbox) -> None:
    broker = MemoryBroker()
    # a 60 s poll interval: only the NOTIFY can explain a fast delivery
    store = PostgresStore(postgres_dsn, outbox)
    relay = Relay(store, MemoryPublisher(broker), poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_until(lambda: store.listening, 20, "the relay to LISTEN", interval=0.05)
        with correlation.bound("job-1"):
            async with conn.transaction():
                await outbox.publisher(conn).publish("user-registered", Message(b"hello", id="m1"))
        started = time.monotonic()
        await wait_until(lambda: len(broker.messages("user-registered")) == 1, 10, "the relayed message",
                         interval=0.05)
        assert time.monotonic() - started < 5
        (msg,) = broker.messages("user-registered")
        assert (msg.id, msg.payload, msg.metadata[Meta.CORRELATION_ID]) == ("m1", b"hello", "job-1")
        await wait_until(lambda: _empty(conn, outbox), 10, "the relayed row to be deleted", interval=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _write(postgres_dsn: str, box: PostgresOutbox, topic: str, keys: list[str], per_key: int,
                 writers: int = 4) -> list[str]:
    """Concurrent writers, each committing small transactions; returns the ids in write order."""
    ids: list[str] = []

    async def writer(w: int) -> None:
        c = await asyncpg.connect(postgres_dsn)
        try:
            for i in range(per_key):
                for key in keys[w::writers]:
                    async with c.transaction():
                        msg = Message(f"{key}:{i}".encode(), {Meta.PARTITION_KEY: key})
                        await box.publisher(c).publish(topic, msg)
                    ids.append(msg.id)
        finally:
            await c.close()

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return ids


async def test_three_relays_publish_each_row_exactly_once_in_key_order(
        postgres_dsn: str, conn: asyncpg.Connection, outbox: PostgresOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.outbox"
    await create_topic(bootstrap, topic, partitions=3)
    keys = [f"user-{k}" for k in range(12)]
    per_key = 50  # 600 rows
    # rows written while the relays run, in small batches so their claims interleave
    started: list[list[str]] = [[], [], []]
    relays = [Relay(PostgresStore(postgres_dsn, outbox), lambda: KafkaPublisher(bootstrap),
                    batch_size=16, poll_interval=0.5, report=lines.append) for lines in started]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        # all three watching before the first row (on a busy machine one could start after the other
        # two drained everything, and the sharing asserted below would not be tested)
        await wait_until(lambda: all(any("watching" in line for line in lines) for lines in started), 60,
                         "the three relays to watch the outbox", interval=0.05)
        ids = await _write(postgres_dsn, outbox, topic, keys, per_key)
        await wait_until(lambda: _empty(conn, outbox), 120, "the relays to drain the outbox", interval=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert sum(r.stats.published for r in relays) == len(ids)
    assert all(r.stats.published > 0 for r in relays), [r.stats for r in relays]
    assert await records_on_topic(bootstrap, topic) == len(ids), "a row was published twice"
    records = await read_topic(bootstrap, topic)
    assert sorted(headers(r)[Meta.EVENT_ID] for r in records) == sorted(ids)
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for r in records:  # partition by partition: the order within a key is the write order
        key, i = r.value.decode().split(":")
        seen[key].append(int(i))
    assert all(seen[k] == list(range(per_key)) for k in keys), {k: v[:10] for k, v in seen.items()}


async def _empty(conn: asyncpg.Connection, box: PostgresOutbox) -> bool:
    return await _count(conn, box) == 0
