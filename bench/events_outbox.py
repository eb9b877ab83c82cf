"""Outbox latency and relay throughput: PostgreSQL outbox -> `culture events relay` -> Kafka.

1. Latency: writers commit one event per transaction (as a service does) at a steady --rate
   (default 1,000 events/s) for --seconds (default 10); the relay runs as its own process
   (`culture events relay`, woken by LISTEN/NOTIFY, poll interval 1 s as fallback only); a raw
   aiokafka consumer timestamps each event as it arrives. Latency = consumed - committed
   (one clock: writers and consumer share this process). Target: p99 < 50 ms at 1,000 events/s.
   For comparison, the same schedule published straight to Kafka (no outbox) gives the floor.
2. Throughput: --backlog rows (default 20,000) are committed while no relay runs; a relay
   (in-process, batch 500) then drains them: events/s from its start to an empty outbox.

    .venv/bin/python bench/events_outbox.py [--rate 1000] [--seconds 10] [--backlog 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from events_common import bootstrap, create_topic, delete_topics, load_note, percentile, unique, up

from culture_events.backends.kafka import KafkaPublisher, relay_publisher
from culture_events.message import Message, Meta
from culture_events.outbox.postgres import PostgresOutbox, PostgresStore
from culture_events.outbox.relay import Relay
from culture_stack.server import say

PARTITIONS = 3
WRITERS = 8


async def consume(servers: str, topic: str, arrived: dict[str, float], ready: asyncio.Event,
                  stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        ready.set()
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for r in records:
                    for k, v in r.headers or ():
                        if k == Meta.EVENT_ID:
                            arrived[v.decode()] = now
    finally:
        await consumer.stop()


async def write_paced(dsn: str, box: PostgresOutbox, topic: str, rate: float, seconds: float,
                      committed: dict[str, float]) -> float:
    """WRITERS connections, each committing one event per transaction on a shared schedule."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    conns = [await asyncpg.connect(dsn) for _ in range(WRITERS)]

    async def writer(w: int) -> None:
        conn = conns[w]
        for i in range(w, total, WRITERS):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = Message(b"x" * 200, {Meta.PARTITION_KEY: f"user-{i % 500}", Meta.EVENT_TYPE: "bench"})
            async with conn.transaction():
                await box.publisher(conn).publish(topic, msg)
            committed[msg.id] = time.time()

    try:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        return total / (time.monotonic() - start)
    finally:
        for c in conns:
            await c.close()


@contextlib.asynccontextmanager
async def outbox_and_topic(servers: str, dsn: str,
                           name: str) -> AsyncIterator[tuple[str, PostgresOutbox, asyncpg.Connection]]:
    """A fresh topic and outbox table, and a connection to the database; all dropped afterwards."""
    topic = unique(f"outbox-{name}")
    box = PostgresOutbox(unique("outbox").replace("-", "_"))
    await create_topic(servers, topic, PARTITIONS)
    conn = await asyncpg.connect(dsn)
    try:
        await box.ensure_schema(conn)
        yield topic, box, conn
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {box.qtable}")
        await conn.close()
        await delete_topics(servers, topic)


async def latency(servers: str, dsn: str, args: argparse.Namespace) -> None:
    async with outbox_and_topic(servers, dsn, "latency") as (topic, box, conn):
        culture = str(Path(sys.executable).parent / "culture")
        relay = await asyncio.create_subprocess_exec(
            culture, "events", "relay", "--store", "postgres", "--dsn", dsn, "--table", box.table,
            "--brokers", servers, "--report-every", "3600", stderr=asyncio.subprocess.PIPE)
        assert relay.stderr is not None
        while b"watching" not in (await relay.stderr.readline()):  # the relay LISTENs: go
            pass
        arrived: dict[str, float] = {}
        committed: dict[str, float] = {}
        ready, stop = asyncio.Event(), asyncio.Event()
        consumer = asyncio.create_task(consume(servers, topic, arrived, ready, stop))
        try:
            await ready.wait()
            # one event through the whole path first, as the Kafka-alone run below sends one: the
            # relay's producer fetches the topic's metadata on its first send, which is set-up, not latency
            warm = Message(b"warm-up")
            async with conn.transaction():
                await box.publisher(conn).publish(topic, warm)
            deadline = time.monotonic() + 30
            while warm.id not in arrived and time.monotonic() < deadline:  # noqa: ASYNC110 - filled by a task
                await asyncio.sleep(0.01)
            arrived.clear()
            say(f"outbox latency: {args.rate:.0f} events/s for {args.seconds:.0f}s, {WRITERS} writers, "
                f"relay process pid {relay.pid}")
            achieved = await write_paced(dsn, box, topic, args.rate, args.seconds, committed)
            deadline = time.monotonic() + 60
            # the consumer task fills `arrived`; a bounded poll is simpler than an event per message
            while len(arrived) < len(committed) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            lat = [(arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived]
            print(f"commit->consumed latency at {achieved:,.0f} events/s written "
                  f"({len(lat)}/{len(committed)} consumed): p50 {percentile(lat, 50):.1f} ms, "
                  f"p90 {percentile(lat, 90):.1f} ms, "
                  f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms (target p99 < 50 ms)")
        finally:
            stop.set()
            await consumer
            relay.send_signal(signal.SIGTERM)
            await asyncio.wait_for(relay.wait(), 30)


async def kafka_floor(servers: str, args: argparse.Namespace) -> None:
    """The same schedule straight to Kafka (no database, no relay): the floor on this machine today."""
    topic = unique("kafka-floor")
    await create_topic(servers, topic, PARTITIONS)
    arrived: dict[str, float] = {}
    sent: dict[str, float] = {}
    ready, stop = asyncio.Event(), asyncio.Event()
    consumer = asyncio.create_task(consume(servers, topic, arrived, ready, stop))
    publisher = KafkaPublisher(servers)
    try:
        await ready.wait()
        await publisher.publish(topic, Message(b"warm-up"))
        total = int(args.rate * args.seconds)
        start = time.monotonic() + 0.2
        pending = []
        for i in range(total):
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = Message(b"x" * 200, {Meta.PARTITION_KEY: f"user-{i % 500}"})
            sent[msg.id] = time.time()
            pending.append(asyncio.ensure_future(publisher.publish(topic, msg)))
        await asyncio.gather(*pending)
        deadline = time.monotonic() + 60
        while len(arrived) < total and time.monotonic() < deadline:  # noqa: ASYNC110 - filled by a task
            await asyncio.sleep(0.1)
        lat = [(arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived]
        print(f"Kafka alone (publish->consumed, same schedule, no outbox): p50 {percentile(lat, 50):.1f} ms, "
              f"p99 {percentile(lat, 99):.1f} ms")
    finally:
        stop.set()
        await consumer
        await publisher.close()
        await delete_topics(servers, topic)


async def throughput(servers: str, dsn: str, args: argparse.Namespace) -> None:
    async with outbox_and_topic(servers, dsn, "throughput") as (topic, box, conn):
        say(f"outbox relay throughput: committing a backlog of {args.backlog} events...")
        for i in range(0, args.backlog, 500):
            async with conn.transaction():
                await box.publisher(conn).publish(topic, *(
                    Message(b"x" * 200, {Meta.PARTITION_KEY: f"user-{j % 500}"})
                    for j in range(i, min(i + 500, args.backlog))))
        relay = Relay(PostgresStore(dsn, box), lambda: relay_publisher(servers, "bench-relay"),
                      batch_size=500)
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(relay.run(stop))
        # the outbox is empty once the relay deleted every published row (a database condition)
        while await conn.fetchval(f"SELECT count(*) FROM {box.qtable}") > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        stop.set()
        await task
        print(f"relay throughput: {args.backlog:,} events in {elapsed:.1f}s = {args.backlog / elapsed:,.0f} "
              f"events/s (one relay, batches of 500, acks=all)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s written (default 1000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length (default 10)")
    parser.add_argument("--backlog", type=int, default=20000, help="events for the throughput run (20000)")
    args = parser.parse_args()
    settings = up("postgres", "kafka")
    servers, dsn = bootstrap(settings), settings["postgres"]["dsn"]
    say(load_note())
    await latency(servers, dsn, args)
    await kafka_floor(servers, args)
    await throughput(servers, dsn, args)
    print(load_note())


if __name__ == "__main__":
    asyncio.run(main())
