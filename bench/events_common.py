"""Shared bits of the event-library benchmarks (bench/events_*.py): servers, topics, statistics."""

from __future__ import annotations

import os
import statistics
import uuid
from typing import Any

from culture_stack import registry, stack
from culture_stack.server import Context, say


def up(*names: str) -> dict[str, dict[str, Any]]:
    """Start only the servers a benchmark needs (idempotent) and return their settings."""
    servers = registry.select(list(names))
    stack.up(Context.default(), servers)
    return {s.name: s.settings() for s in servers}


def bootstrap(settings: dict[str, dict[str, Any]]) -> str:
    kafka = settings["kafka"]
    return kafka.get("bootstrap_servers") or f"{kafka['host']}:{kafka['port']}"


def unique(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create a topic (auto-creation is off on the stack's broker)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, *topics: str) -> None:
    """Remove the benchmark's topics (best effort: the broker is shared)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        await admin.start()
        await admin.delete_topics(list(topics))
    except Exception as exc:  # noqa: BLE001 - cleanup only
        say(f"  (could not delete topics {topics}: {exc})")
    finally:
        await admin.close()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest-rank."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def load_note() -> str:
    """One line on how busy the machine is (the numbers depend on it)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def median(values: list[float]) -> float:
    return statistics.median(values)
