"""The Router's own CPU cost per consumed message, without a broker: KafkaSubscriber and the Router
over a stand-in aiokafka consumer that hands out prebuilt records, vs a raw loop over the same
stand-in (decode the headers, await a no-op handler, commit per batch).

events_router.py measures throughput against a real Kafka, where aiokafka's fetch and decoding cost
both sides the same and a shared machine's load scatters the rounds; this measures only what the
library adds (microseconds of CPU per message, process time), so a change to the fetch loop or the
settlement path shows up clearly. No servers needed; about 30 seconds.

    .venv/bin/python bench/events_router_cpu.py [--count 100000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition

from culture_events.backends import kafka as kafka_backend
from culture_events.backends.kafka import KafkaSubscriber
from culture_events.message import Message
from culture_events.router import Router

TOPIC, PARTITIONS = "bench-cpu", 3


def records(n: int, size: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    """n records over the partitions, keyed like the real benchmark (100 keys), with its headers."""
    out: dict[TopicPartition, list[ConsumerRecord]] = {
        TopicPartition(TOPIC, p): [] for p in range(PARTITIONS)}
    payload = b"x" * size
    for i in range(n):
        key = f"user-{i % 100}".encode()
        tp = TopicPartition(TOPIC, hash(key) % PARTITIONS)
        headers = [("culture-event-id", f"e{i}".encode()), ("culture-event-type", b"bench.Event"),
                   ("culture-partition-key", key)]
        out[tp].append(ConsumerRecord(TOPIC, tp.partition, len(out[tp]), 0, 0, key, payload, None,
                                      len(key), size, headers))
    return out


class FakeConsumer:
    """The part of AIOKafkaConsumer the subscriber and the raw loop use, over prebuilt records."""

    data: dict[TopicPartition, list[ConsumerRecord]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.position = dict.fromkeys(self.data, 0)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        pass

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position[tp] = offset

    async def commit(self, offsets: Any = None) -> None:
        pass

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Any]]:
        await asyncio.sleep(0)  # a real fetch yields to the loop at least once
        left, out = max_records or 500, {}
        for tp, recs in self.data.items():
            pos = self.position[tp]
            take = recs[pos:pos + max(1, left // PARTITIONS)]
            if take:
                out[tp] = take
                self.position[tp] = pos + len(take)
        if not out:
            await asyncio.sleep(timeout_ms / 1000)
        return out


async def raw(n: int) -> float:
    """CPU seconds per message of a hand-written loop over the stand-in consumer."""
    consumer = FakeConsumer()

    async def handle(payload: bytes, headers: dict[str, str]) -> None:
        pass

    seen, started = 0, time.process_time()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=500)
        for recs in batch.values():
            for record in recs:
                seen += 1
                await handle(record.value, {k: v.decode() for k, v in record.headers or ()})
        if batch:
            await consumer.commit()
    return (time.process_time() - started) / n


async def routed(n: int) -> float:
    """CPU seconds per message of the Router (8 lanes, no-op handler) over KafkaSubscriber."""
    subscriber = KafkaSubscriber("stand-in:9092", "bench-cpu", max_in_flight=500)
    router = Router(concurrency=8)
    seen, started = 0, 0.0
    done = asyncio.Event()

    async def handler(msg: Message) -> list[Message]:
        nonlocal seen, started
        if not seen:
            started = time.process_time()
        seen += 1
        if seen >= n:
            done.set()
        return []

    router.add_consumer_handler("bench", TOPIC, subscriber, handler)
    task = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(done.wait(), 300)
        return (time.process_time() - started) / (n - 1)
    finally:
        await router.close()
        await task


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000,
                        help="messages per side and round (default 100000)")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (default 200)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, both sides in each (default 6)")
    args = parser.parse_args()
    FakeConsumer.data = records(args.count, args.size)
    kafka_backend.AIOKafkaConsumer = FakeConsumer  # type: ignore[misc,assignment]
    sides = [("raw loop", raw), ("Router", routed)]
    results: dict[str, list[float]] = {"raw loop": [], "Router": []}
    for r in range(args.rounds):
        for name, fn in (sides if r % 2 == 0 else sides[::-1]):
            results[name].append(await fn(args.count))
        raw_us, router_us = results["raw loop"][-1] * 1e6, results["Router"][-1] * 1e6
        print(f"  round {r + 1}: raw loop {raw_us:.2f} us/msg, Router {router_us:.2f} us/msg", flush=True)
    raw_us = statistics.median(results["raw loop"]) * 1e6
    router_us = statistics.median(results["Router"]) * 1e6
    print(f"raw loop  median {raw_us:.2f} us of CPU per message (best {min(results['raw loop']) * 1e6:.2f})")
    print(f"Router    median {router_us:.2f} us of CPU per message (best {min(results['Router']) * 1e6:.2f})")
    print(f"library's own cost: {router_us - raw_us:.2f} us per message; "
          f"Router/raw CPU {router_us / raw_us:.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")


if __name__ == "__main__":
    asyncio.run(main())
