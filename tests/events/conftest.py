"""Fixtures for the event library's tests: only the servers these tests need (Redis, Kafka,
PostgreSQL), started through `_outbox_support.up`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from _outbox_support import kafka_bootstrap as _kafka_bootstrap
from _outbox_support import up


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the local stack's Redis (started when down)."""
    return up("redis")["url"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the local stack's Kafka (started when down)."""
    return _kafka_bootstrap()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the local stack's PostgreSQL (started when down)."""
    return up("postgres")["dsn"]


@pytest.fixture
async def conn(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the local stack's PostgreSQL, closed after the test."""
    c = await asyncpg.connect(postgres_dsn)
    yield c
    await c.close()
