"""Publish throughput: the library's KafkaPublisher vs raw aiokafka with the same batching.

Both use one idempotent producer (acks=all, linger 5 ms), the same keys, headers and payloads, and
hand the producer 500 messages at a time, waiting for all their acks (what `publish(topic, *msgs)`
does). Rounds alternate raw/library so a load spike hits both; the best and the median round of
each are compared (target: library >= 0.85x raw). Then Kafka's own ProducerPerformance tool
(same jars, JVM) gives the broker's ceiling on this machine. Loopback only; about a minute.

    .venv/bin/python bench/events_publish.py [--count 20000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time

from aiokafka import AIOKafkaProducer
from events_common import bootstrap, create_topic, delete_topics, load_note, median, unique, up

from culture_events.backends.kafka import KafkaPublisher, to_headers
from culture_events.message import Message, Meta
from culture_stack.server import Context, say
from culture_stack.servers.kafka import kafka_tool_argv

CHUNK = 500


def messages(n: int, size: int) -> list[Message]:
    payload = b"x" * size
    return [Message(payload, {Meta.PARTITION_KEY: f"user-{i % 100}", Meta.EVENT_TYPE: "bench.Event",
                              Meta.CORRELATION_ID: "bench"}) for i in range(n)]


async def raw(servers: str, topic: str, msgs: list[Message]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    # like the library's warm-up: the topic's metadata is fetched before the clock starts
    await (await producer.send(topic, b"warm-up"))
    try:
        started = time.perf_counter()
        for i in range(0, len(msgs), CHUNK):
            futures = [await producer.send(topic, m.payload, key=m.key.encode() if m.key else None,
                                           headers=to_headers(m)) for m in msgs[i:i + CHUNK]]
            await asyncio.gather(*futures)
        return len(msgs) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def library(servers: str, topic: str, msgs: list[Message]) -> float:
    publisher = KafkaPublisher(servers, linger_ms=5)
    await publisher.publish(topic, Message(b"warm-up"))  # starts the producer, like raw's start()
    try:
        started = time.perf_counter()
        for i in range(0, len(msgs), CHUNK):
            await publisher.publish(topic, *msgs[i:i + CHUNK])
        return len(msgs) / (time.perf_counter() - started)
    finally:
        await publisher.close()


def ceiling(servers: str, topic: str, count: int, size: int) -> str:
    """Kafka's ProducerPerformance on the same broker and settings: its summary line."""
    argv = kafka_tool_argv(Context.default(), "org.apache.kafka.tools.ProducerPerformance",
                           "--topic", topic, "--num-records", str(count), "--record-size", str(size),
                           "--throughput", "-1", "--producer-props", f"bootstrap.servers={servers}",
                           "acks=all", "enable.idempotence=true", "linger.ms=5")
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return f"ProducerPerformance failed: {exc}"
    summary = [line for line in out.splitlines() if "records sent" in line]
    return summary[-1] if summary else out.strip()[-300:]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="messages per round (default 20000)")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (default 200)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side, alternating (default 4)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip Kafka's ProducerPerformance")
    args = parser.parse_args()
    servers = bootstrap(up("kafka"))
    t_raw, t_lib, t_perf = unique("raw"), unique("lib"), unique("perf")
    for t in (t_raw, t_lib, t_perf):
        await create_topic(servers, t, 3)
    say(f"publish: {args.count} x {args.size} B per round, {args.rounds} rounds each; {load_note()}")
    try:
        results: dict[str, list[float]] = {"raw aiokafka": [], "culture_events": []}
        for r in range(args.rounds):
            for name, fn, topic in (("raw aiokafka", raw, t_raw), ("culture_events", library, t_lib)):
                rate = await fn(servers, topic, messages(args.count, args.size))
                results[name].append(rate)
                say(f"  round {r + 1} {name:15s} {rate:10,.0f} msg/s")
        best_raw, best_lib = max(results["raw aiokafka"]), max(results["culture_events"])
        print(f"raw aiokafka     best {best_raw:10,.0f} msg/s")
        print(f"culture_events   best {best_lib:10,.0f} msg/s")
        med_raw, med_lib = median(results["raw aiokafka"]), median(results["culture_events"])
        print(f"ratio library/raw    {best_lib / best_raw:.2f}x best-of-{args.rounds}, "
              f"{med_lib / med_raw:.2f}x median (target >= 0.85x)")
        if not args.no_ceiling:
            say("  Kafka ProducerPerformance (JVM, same settings)...")
            print(f"broker ceiling (ProducerPerformance, {args.count * 3} x {args.size} B): "
                  f"{ceiling(servers, t_perf, args.count * 3, args.size)}")
        print(load_note())
    finally:
        await delete_topics(servers, t_raw, t_lib, t_perf)


if __name__ == "__main__":
    asyncio.run(main())
