"""The MongoDB outbox on the stack's MongoDB-compatible server (SecantusDB): writes in the caller's
session transaction, change-stream wake-ups, lease claims shared by concurrent relays."""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _outbox_support import create_topic, headers, kafka_bootstrap, read_topic, records_on_topic, up
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorClientSession

from culture_events import correlation
from culture_events.backends.kafka import KafkaPublisher
from culture_events.backends.memory import MemoryBroker, MemoryPublisher
from culture_events.errors import EventsError
from culture_events.message import Message, Meta
from culture_events.outbox.mongo import MongoOutbox, MongoStore
from culture_events.outbox.relay import Relay
from culture_events.testing import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mongo_uri() -> str:
    return up("mongo")["uri"]


@pytest.fixture
async def client(mongo_uri: str, unique: str) -> AsyncIterator[AsyncIOMotorClient]:
    c = AsyncIOMotorClient(mongo_uri)
    yield c
    await c.drop_database(unique)
    c.close()


@pytest.fixture
async def outbox(client: AsyncIOMotorClient, unique: str) -> MongoOutbox:
    box = MongoOutbox(client[unique], "outbox")
    await box.ensure_schema()
    return box


async def test_publish_outside_a_transaction_is_refused(client: AsyncIOMotorClient,
                                                        outbox: MongoOutbox) -> None:
    async with await client.start_session() as session:
        with pytest.raises(EventsError, match="transaction"):
            await outbox.publisher(session).publish("t", Message(b"x"))


async def test_documents_follow_the_callers_transaction(client: AsyncIOMotorClient, outbox: MongoOutbox,
                                                        unique: str) -> None:
    async with await client.start_session() as session:
        with pytest.raises(RuntimeError):
            async with session.start_transaction():
                await client[unique].reviews.insert_one({"r": 1}, session=session)
                await outbox.publisher(session).publish("t", Message(b"rolled back"))
                raise RuntimeError("the service's own write failed")
    assert await outbox.collection.count_documents({}) == 0

    async with await client.start_session() as session, session.start_transaction():
        with correlation.bound("job-9"):
            await outbox.publisher(session).publish("t", Message(b"a", {Meta.PARTITION_KEY: "u1"}),
                                                    Message(b"b", {Meta.PARTITION_KEY: "u1"}), Message(b"c"))
    docs = await outbox.collection.find().sort("_id").to_list(None)
    assert [(d["key"], d.get("seq")) for d in docs] == [("u1", 1), ("u1", 2), (None, None)]
    assert {d["metadata"][Meta.CORRELATION_ID] for d in docs} == {"job-9"}


async def test_relay_wakes_on_the_change_stream(mongo_uri: str, client: AsyncIOMotorClient,
                                               outbox: MongoOutbox, unique: str) -> None:
    broker = MemoryBroker()
    store = MongoStore(mongo_uri, unique, "outbox")
    relay = Relay(store, MemoryPublisher(broker), poll_interval=60)  # only the stream can wake it soon
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_until(lambda: store.watching, 30, "the change stream to open", interval=0.05)
        async with await client.start_session() as session, session.start_transaction():
            with correlation.bound("job-3"):
                await outbox.publisher(session).publish("catalog.review-created", Message(b"r", id="m1"))
        started = time.monotonic()
        await wait_until(lambda: len(broker.messages("catalog.review-created")) == 1, 30,
                         "the relayed message", interval=0.05)
        assert time.monotonic() - started < 10
        (msg,) = broker.messages("catalog.review-created")
        assert (msg.id, msg.metadata[Meta.CORRELATION_ID]) == ("m1", "job-3")
        await wait_until(lambda: _empty(outbox), 10, "the relayed document to be deleted", interval=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _empty(box: MongoOutbox) -> bool:
    return await box.collection.count_documents({}) == 0


async def test_two_relays_publish_each_document_exactly_once_in_key_order(
        mongo_uri: str, client: AsyncIOMotorClient, outbox: MongoOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.mongo-outbox"
    await create_topic(bootstrap, topic, partitions=2)
    keys, per_key = [f"work-{k}" for k in range(6)], 15  # 90 documents (the server is slow)
    relays = [Relay(MongoStore(mongo_uri, unique, "outbox"), lambda: KafkaPublisher(bootstrap),
                    batch_size=8, poll_interval=0.5) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    ids: list[str] = []

    async def writer(my_keys: list[str]) -> None:
        for i in range(per_key):
            for key in my_keys:
                msg = Message(f"{key}:{i}".encode(), {Meta.PARTITION_KEY: key})

                async def write(session: AsyncIOMotorClientSession, msg: Message = msg) -> None:
                    await outbox.publisher(session).publish(topic, msg)

                # with_transaction retries a TransientTransactionError (a WriteConflict with the
                # relays' lease updates), as any MongoDB transaction must
                async with await client.start_session() as session:
                    await session.with_transaction(write)
                ids.append(msg.id)

    try:
        await asyncio.gather(writer(keys[0::2]), writer(keys[1::2]))
        await wait_until(lambda: _empty(outbox), 120, "the relays to drain the outbox", interval=0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert sum(r.stats.published for r in relays) == len(ids)
    assert await records_on_topic(bootstrap, topic) == len(ids), "a document was published twice"
    records = await read_topic(bootstrap, topic)
    assert sorted(headers(r)[Meta.EVENT_ID] for r in records) == sorted(ids)
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for r in records:
        key, i = r.value.decode().split(":")
        seen[key].append(int(i))
    assert all(seen[k] == list(range(per_key)) for k in keys), seen


async def test_the_relay_command_relays_a_mongo_outbox_and_stops_on_sigterm(
        mongo_uri: str, client: AsyncIOMotorClient, outbox: MongoOutbox, unique: str) -> None:
    bootstrap = kafka_bootstrap()
    topic = f"{unique}.mongo-cli"
    await create_topic(bootstrap, topic)
    relay = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "culture"), "events", "relay", "--store", "mongo",
        "--uri", mongo_uri, "--database", unique, "--collection", "outbox", "--brokers", bootstrap,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with await client.start_session() as session, session.start_transaction():
            await outbox.publisher(session).publish(topic, Message(b"1", id="cli-1"),
                                                    Message(b"2", id="cli-2"))
        await wait_until(lambda: _empty(outbox), 60, "the relay process to publish and delete", interval=0.2)
        records = await read_topic(bootstrap, topic)
        assert [headers(r)[Meta.EVENT_ID] for r in records] == ["cli-1", "cli-2"]
        relay.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(relay.wait(), 30) == 0
        assert relay.stderr is not None
        err = (await relay.stderr.read()).decode()
        assert "SIGTERM, stopping" in err and "stopped after publishing 2" in err, err
    finally:
        if relay.returncode is None:
            relay.kill()
            await relay.wait()
