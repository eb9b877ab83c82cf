"""Metrics: per handler, messages handled by outcome, outputs produced and handling latency."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from culture_events import handling
from culture_events.errors import RetryLater
from culture_events.handling import Handler
from culture_events.message import Message


class Metrics:
    """Prometheus counters and a latency histogram; pass `registry` so tests do not collide."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, namespace: str = "culture_events") -> None:
        self.handled = Counter(f"{namespace}_messages_handled", "Messages handled, by outcome",
                               ["handler", "topic", "outcome"], registry=registry)
        self.produced = Counter(f"{namespace}_messages_produced", "Output messages returned by handlers",
                                ["handler"], registry=registry)
        self.latency = Histogram(f"{namespace}_handler_seconds", "Handling time, middleware included",
                                 ["handler", "topic"], registry=registry)

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            where = handling.current()
            start = time.perf_counter()
            outcome = "error"
            try:
                outputs = await next_handler(msg)
                outcome = "ok"
                self.produced.labels(where.handler).inc(len(outputs or []))
                return outputs
            except RetryLater:
                outcome = "deferred"  # not an outcome yet: the message comes back after its wait
                raise
            finally:
                self.latency.labels(where.handler, where.topic).observe(time.perf_counter() - start)
                self.handled.labels(where.handler, where.topic, outcome).inc()

        return handle
