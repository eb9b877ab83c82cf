"""Consume throughput: the library's Router over KafkaSubscriber vs a raw aiokafka consumer loop.

A topic (3 partitions) is filled once; then a raw consumer (its own group: getmany, a no-op
handler per record, a commit per batch) and the Router (its own group: KafkaSubscriber, per-key
lanes, a no-op handler, ack -> contiguous commits) each read it all; the raw loop decodes the headers
and awaits a no-op handler per record, the least a hand-written consumer does. The clock starts at the first
message (group join time is the same for both and not what is measured) and stops at the last.
Each round runs both sides back to back, in alternating order (raw first, then router first), so a
load spike on this shared machine hits both and neither always goes first; the headline is the
median of the rounds' own ratios (router/raw within one round), with the best rounds and the median
rates beside it (target: router >= 0.7x raw). Each side's CPU time in this process per message is
printed too: on a busy machine wall-clock rates swing with the neighbours, CPU per message far less.
100,000 messages by default: at 100-200k msg/s a smaller topic is read in a fraction of a second,
and such short windows mostly measure noise. About two minutes.

    .venv/bin/python bench/events_router.py [--count 100000] [--rounds 6]
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


async def raw(servers: str, topic: str, n: int) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=unique("raw"),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    seen, started, cpu = 0, 0.0, 0.0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    if not seen:
                        started, cpu = time.perf_counter(), time.process_time()
                    seen += 1
                    # what a hand-written consumer does at least: read the headers, call a handler
                    await handle(record.value, {k: v.decode() for k, v in record.headers or ()})
            if batch:
                await consumer.commit()
        return (n - 1) / (time.perf_counter() - started), (time.process_time() - cpu) / (n - 1)
    finally:
        await consumer.stop()


async def routed(servers: str, topic: str, n: int) -> tuple[float, float]:
    subscriber = KafkaSubscriber(servers, unique("router"), max_in_flight=500)
    router = Router(concurrency=8)
    seen, started, cpu = 0, 0.0, 0.0
    done = asyncio.Event()

    async def handler(msg: Message) -> list[Message]:
        nonlocal seen, started, cpu
        if not seen:
            started, cpu = time.perf_counter(), time.process_time()
        seen += 1
        if seen >= n:
            done.set()
        return []

    router.add_consumer_handler("bench", topic, subscriber, handler)
    task = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(done.wait(), 120)
        return (n - 1) / (time.perf_counter() - started), (time.process_time() - cpu) / (n - 1)
    finally:
        await router.close()
        await task


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="messages in the topic (default 100000)")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (default 200)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, both sides in each (default 6)")
    args = parser.parse_args()
    servers = bootstrap(up("kafka"))
    topic = unique("router")
    await create_topic(servers, topic, 3)
    say(f"router: filling {topic} with {args.count} x {args.size} B; {load_note()}")
    try:
        await fill(servers, topic, args.count, args.size)
        results: dict[str, list[float]] = {"raw aiokafka loop": [], "culture_events Router": []}
        cpu: dict[str, list[float]] = {"raw aiokafka loop": [], "culture_events Router": []}
        sides = [("raw aiokafka loop", raw), ("culture_events Router", routed)]
        ratios = []
        for r in range(args.rounds):
            for name, fn in (sides if r % 2 == 0 else sides[::-1]):
                rate, per_msg = await fn(servers, topic, args.count)
                results[name].append(rate)
                cpu[name].append(per_msg)
                say(f"  round {r + 1} {name:22s} {rate:10,.0f} msg/s, {per_msg * 1e6:5.1f} us CPU/msg")
            ratios.append(results["culture_events Router"][-1] / results["raw aiokafka loop"][-1])
            say(f"  round {r + 1} ratio {ratios[-1]:.2f}x; {load_note()}")
        raw_rates, router_rates = results["raw aiokafka loop"], results["culture_events Router"]
        print(f"raw aiokafka consumer loop  median {median(raw_rates):10,.0f} msg/s, "
              f"best {max(raw_rates):10,.0f}")
        print(f"culture_events Router       median {median(router_rates):10,.0f} msg/s, "
              f"best {max(router_rates):10,.0f}")
        of_medians, of_bests = median(router_rates) / median(raw_rates), max(router_rates) / max(raw_rates)
        print(f"ratio router/raw   {median(ratios):.2f}x median of {args.rounds} paired rounds "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}); medians {of_medians:.2f}x, "
              f"bests {of_bests:.2f}x (target >= 0.7x)")
        raw_cpu, router_cpu = median(cpu["raw aiokafka loop"]), median(cpu["culture_events Router"])
        # this process's CPU per message (both sides in it; the broker is another process): what a
        # busy machine disturbs least, so the ratio to compare across runs while others work
        print(f"CPU per message    raw {raw_cpu * 1e6:.1f} us, Router {router_cpu * 1e6:.1f} us (medians); "
              f"ratio raw/router {raw_cpu / router_cpu:.2f}x")
        print(load_note())
    finally:
        await delete_topics(servers, topic)


if __name__ == "__main__":
    asyncio.run(main())
