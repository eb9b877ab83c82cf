"""The universal contract suite against every backend: memory, Redis Streams and Kafka (real)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from culture_events.backends.memory import MemoryBroker, MemoryPublisher, MemorySubscriber
from culture_events.testing import SCENARIOS, Backend, Features


def memory_backend() -> Backend:
    broker = MemoryBroker(default_partitions=4)
    return Backend("memory", Features(timeout=10.0), lambda: MemoryPublisher(broker),
                   lambda group, **kw: MemorySubscriber(broker, group, **kw))


def redis_backend(url: str) -> Backend:
    from culture_events.backends.redis import RedisPublisher, RedisSubscriber

    def subscriber(group: str, **kw: object) -> RedisSubscriber:
        # a short idle time so abandoned messages are claimed within the test
        return RedisSubscriber(url, group, claim_idle_ms=500, **kw)  # type: ignore[arg-type]

    return Backend("redis", Features(ordering_per_key=False, timeout=20.0),
                   lambda: RedisPublisher(url), subscriber)


def kafka_backend(bootstrap: str) -> Backend:
    from culture_events.backends.kafka import KafkaPublisher, KafkaSubscriber

    return Backend("kafka", Features(timeout=60.0), lambda: KafkaPublisher(bootstrap),
                   lambda group, **kw: KafkaSubscriber(bootstrap, group, **kw))


BACKENDS: dict[str, tuple[Callable[[pytest.FixtureRequest], Backend], str]] = {
    "memory": (lambda req: memory_backend(), "unit"),
    "redis": (lambda req: redis_backend(req.getfixturevalue("redis_url")), "integration"),
    "kafka": (lambda req: kafka_backend(req.getfixturevalue("kafka_bootstrap")), "integration"),
}


def _cases() -> list[object]:
    cases = []
    for backend, (_make, marker) in BACKENDS.items():
        for name in SCENARIOS:
            cases.append(pytest.param(backend, name, id=f"{backend}-{name}",
                                      marks=getattr(pytest.mark, marker)))
    return cases


@pytest.mark.parametrize(("backend_name", "scenario_name"), _cases())
async def test_contract(backend_name: str, scenario_name: str, request: pytest.FixtureRequest,
                        unique: str) -> None:
    backend = BACKENDS[backend_name][0](request)
    fn, requires = SCENARIOS[scenario_name]
    missing = [f for f in requires if not getattr(backend.features, f)]
    if missing:
        pytest.skip(f"{backend.name} lacks {missing}")
    await fn(backend, unique)
