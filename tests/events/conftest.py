"""Fixtures for the event library's tests: only the servers these tests need (Redis, Kafka)."""

from __future__ import annotations

from typing import Any

import pytest

from culture_stack import registry, stack
from culture_stack.server import Context


def _up(name: str) -> dict[str, Any]:
    servers = registry.select([name])
    stack.up(Context.default(), servers)
    return servers[-1].settings()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the local stack's Redis (started when down)."""
    return _up("redis")["url"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the local stack's Kafka (started when down)."""
    settings = _up("kafka")
    return settings.get("bootstrap_servers") or f"{settings['host']}:{settings['port']}"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the local stack's PostgreSQL (started when down)."""
    return _up("postgres")["dsn"]
