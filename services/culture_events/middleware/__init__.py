"""Router middleware, one module each, and the default chain in its documented order.

The default order (first = outermost), and why:

1. Metrics        - sees everything below: total latency including retries, the final outcome.
2. CorrelationID  - the ids are in effect for all that follows, poison publishes included.
3. PoisonQueue    - catches what is left after the retries; publishes with the reason, then acks.
4. Retry          - re-runs the inner part with backoff; non-retryable errors pass straight to poison.
5. Timeout        - per attempt, so a hung attempt is retried rather than ending the message.
6. Deduplicator   - checked on every attempt, just before the work; records ids only once acked.
7. Recoverer      - innermost: crashes become errors and results become lists before anything
                    above looks at them.

An optional Throttle goes first of all, so time spent waiting for a slot is not handler latency.
"""

from __future__ import annotations

from culture_events.handling import Middleware
from culture_events.middleware.correlation_id import correlation_id
from culture_events.middleware.dedup import Deduplicator, MemoryProcessedStore, ProcessedStore
from culture_events.middleware.metrics import Metrics
from culture_events.middleware.poison import PoisonMeta, PoisonQueue
from culture_events.middleware.recoverer import recoverer
from culture_events.middleware.retry import Retry
from culture_events.middleware.throttle import Throttle
from culture_events.middleware.timeout import timeout
from culture_events.ports import Publisher

__all__ = ["Deduplicator", "MemoryProcessedStore", "Metrics", "PoisonMeta", "PoisonQueue", "ProcessedStore",
           "Retry", "Throttle", "correlation_id", "default_middleware", "recoverer", "timeout"]


def default_middleware(*, poison_publisher: Publisher, poison_topic: str, retry: Retry | None = None,
                       timeout_seconds: float = 30.0, dedup_store: ProcessedStore | None = None,
                       metrics: Metrics | None = None, throttle: Throttle | None = None) -> list[Middleware]:
    """The standard chain, in the documented order; leave out Metrics/Deduplicator/Throttle with None."""
    chain: list[Middleware] = []
    if throttle is not None:
        chain.append(throttle)
    if metrics is not None:
        chain.append(metrics)
    chain += [correlation_id, PoisonQueue(poison_publisher, poison_topic), retry or Retry(),
              timeout(timeout_seconds)]
    if dedup_store is not None:
        chain.append(Deduplicator(dedup_store))
    chain.append(recoverer)
    return chain
