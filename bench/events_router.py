"""Consume throughput: the library's Router over KafkaSubscriber vs a raw aiokafka consumer loop.

A topic (3 partitions) is filled once; then a raw consumer (its own group: getmany, a no-op
handler per record, a commit per batch) and the Router (its own group: KafkaSubscriber, per-key
lanes, a no-op handler, ack -> contiguous commits) each read it all; the raw loop decodes the headers
and awaits a no-op handler per record, the least a hand-written consumer does. The clock starts at the first
message (group join time is the same for both and not what is measured) and stops at the last.
Alternating rounds; the best and the median round of each are compared (target: router >= 0.7x
raw). About a minute.

    .venv/bin/python bench/events_router.py [--count 20000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from events_common import bootstrap, create_topic, delete_topics, load_note, median, unique, up

from culture_events.backends.kafka import KafkaSubscriber, to_headers
from culture_events.message import Message, Meta
from culture_events.router import Router
from culture_stack.server import say


async def fill(servers: str, topic: str, n: int, size: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        payload = b"x" * size
        futures = []
        for i in range(n):
            msg = Message(payload, {Meta.PARTITION_KEY: f"user-{i % 100}", Meta.EVENT_TYPE: "bench.Event"})
            futures.append(await producer.send(topic, payload, key=msg.key.encode(), headers=to_headers(msg)))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def handle(payload: bytes, headers: dict[str, str]) -> None:
    """The raw loop's no-op handler."""


async def raw(servers: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=unique("raw"),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    if not seen:
                        started = time.perf_counter()
                    seen += 1
                    # what a hand-written consumer does at least: read the headers, call a handler
                    await handle(record.value, {k: v.decode() for k, v in record.headers or ()})
            if batch:
                await consumer.commit()
        return (n - 1) / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def routed(servers: str, topic: str, n: int) -> float:
    subscriber = KafkaSubscriber(servers, unique("router"), max_in_flight=500)
    router = Router(concurrency=8)
    seen, started = 0, 0.0
    done = asyncio.Event()

    async def handler(msg: Message) -> list[Message]:
        nonlocal seen, started
        if not seen:
            started = time.perf_counter()
        seen += 1
        if seen >= n:
            done.set()
        return []

    router.add_consumer_handler("bench", topic, subscriber, handler)
    task = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(done.wait(), 120)
        return (n - 1) / (time.perf_counter() - started)
    finally:
        await router.close()
        await task


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="messages in the topic (default 20000)")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (default 200)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side, alternating (default 4)")
    args = parser.parse_args()
    servers = bootstrap(up("kafka"))
    topic = unique("router")
    await create_topic(servers, topic, 3)
    say(f"router: filling {topic} with {args.count} x {args.size} B; {load_note()}")
    try:
        await fill(servers, topic, args.count, args.size)
        results: dict[str, list[float]] = {"raw aiokafka loop": [], "culture_events Router": []}
        for r in range(args.rounds):
            for name, fn in (("raw aiokafka loop", raw), ("culture_events Router", routed)):
                rate = await fn(servers, topic, args.count)
                results[name].append(rate)
                say(f"  round {r + 1} {name:22s} {rate:10,.0f} msg/s")
        best_raw, best_router = max(results["raw aiokafka loop"]), max(results["culture_events Router"])
        print(f"raw aiokafka consumer loop  best {best_raw:10,.0f} msg/s")
        print(f"culture_events Router       best {best_router:10,.0f} msg/s")
        med_raw, med_router = median(results["raw aiokafka loop"]), median(results["culture_events Router"])
        print(f"ratio router/raw                 {best_router / best_raw:.2f}x best-of-{args.rounds}, "
              f"{med_router / med_raw:.2f}x median (target >= 0.7x)")
        print(load_note())
    finally:
        await delete_topics(servers, topic)


if __name__ == "__main__":
    asyncio.run(main())
