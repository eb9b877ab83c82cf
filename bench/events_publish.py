"""Publish throughput: the library's KafkaPublisher vs raw aiokafka with the same batching.

Both use one idempotent producer with the same settings (acks=all, linger 5 ms, request timeout),
the same keys, headers and payloads, and hand the producer 500 messages at a time, waiting for all
their acks (what `publish(topic, *msgs)` does). Each round runs both sides back to back, in
alternating order (raw first, then library first), so a load spike on this shared machine hits both
and neither always goes first; the headline is the median of the rounds' own ratios (library/raw
within one round), with the best rounds and the median rates beside it (target: library >= 0.85x
raw). Then Kafka's own ProducerPerformance tool (same jars, JVM) gives the broker's ceiling on this
machine. Loopback only; about a minute.

    .venv/bin/python bench/events_publish.py [--count 20000] [--rounds 8]
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
LINGER_MS = 5
REQUEST_TIMEOUT_MS = 30000  # KafkaPublisher's default; the same on both sides


def messages(n: int, size: int) -> list[Message]:
    payload = b"x" * size
    return [Message(payload, {Meta.PARTITION_KEY: f"user-{i % 100}", Meta.EVENT_TYPE: "bench.Event",
                              Meta.CORRELATION_ID: "bench"}) for i in range(n)]


async def raw(servers: str, topic: str, msgs: list[Message]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                                linger_ms=LINGER_MS, request_timeout_ms=REQUEST_TIMEOUT_MS)
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
    publisher = KafkaPublisher(servers, linger_ms=LINGER_MS, request_timeout_ms=REQUEST_TIMEOUT_MS)
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
    parser.add_argument("--rounds", type=int, default=8, help="rounds, both sides in each (default 8)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip Kafka's ProducerPerformance")
    args = parser.parse_args()
    servers = bootstrap(up("kafka"))
    t_raw, t_lib, t_perf = unique("raw"), unique("lib"), unique("perf")
    for t in (t_raw, t_lib, t_perf):
        await create_topic(servers, t, 3)
    say(f"publish: {args.count} x {args.size} B per round, {args.rounds} rounds each; {load_note()}")
    try:
        results: dict[str, list[float]] = {"raw aiokafka": [], "culture_events": []}
        sides = [("raw aiokafka", raw, t_raw), ("culture_events", library, t_lib)]
        ratios = []
        for r in range(args.rounds):
            for name, fn, topic in (sides if r % 2 == 0 else sides[::-1]):
                rate = await fn(servers, topic, messages(args.count, args.size))
                results[name].append(rate)
                say(f"  round {r + 1} {name:15s} {rate:10,.0f} msg/s")
            ratios.append(results["culture_events"][-1] / results["raw aiokafka"][-1])
            say(f"  round {r + 1} ratio {ratios[-1]:.2f}x; {load_note()}")
        raw_rates, lib_rates = results["raw aiokafka"], results["culture_events"]
        print(f"raw aiokafka     median {median(raw_rates):10,.0f} msg/s, best {max(raw_rates):10,.0f}")
        print(f"culture_events   median {median(lib_rates):10,.0f} msg/s, best {max(lib_rates):10,.0f}")
        of_medians, of_bests = median(lib_rates) / median(raw_rates), max(lib_rates) / max(raw_rates)
        print(f"ratio library/raw    {median(ratios):.2f}x median of {args.rounds} paired rounds "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}); medians {of_medians:.2f}x, "
              f"bests {of_bests:.2f}x (target >= 0.85x)")
        if not args.no_ceiling:
            say("  Kafka ProducerPerformance (JVM, same settings)...")
            print(f"broker ceiling (ProducerPerformance, {args.count * 3} x {args.size} B): "
                  f"{ceiling(servers, t_perf, args.count * 3, args.size)}")
        print(load_note())
    finally:
        await delete_topics(servers, t_raw, t_lib, t_perf)


if __name__ == "__main__":
    asyncio.run(main())
