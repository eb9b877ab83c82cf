"""Deduplicator: a processed id is skipped; stores in memory, Redis (real) and PostgreSQL (real)."""

from __future__ import annotations

import pytest

from culture_events import Message
from culture_events.middleware import Deduplicator, MemoryProcessedStore, ProcessedStore

unit = pytest.mark.unit


async def _check_dedup(store: ProcessedStore, unique: str) -> None:
    calls: list[str] = []

    async def handler(msg: Message) -> list[Message]:
        calls.append(msg.id)
        return []

    dedup = Deduplicator(store)
    handle = dedup(handler)
    first = Message(id=f"{unique}-1")
    await handle(first)
    # not acked yet (e.g. the output publish failed): a redelivery runs again
    await handle(first.copy())
    first.ack()
    await dedup.flush()
    await handle(first.copy())
    assert calls == [first.id, first.id]
    failed = Message(id=f"{unique}-2")
    await handle(failed)
    failed.nack()
    await dedup.flush()
    await handle(failed.copy())
    assert calls.count(failed.id) == 2


@unit
async def test_memory_store_with_ttl(unique: str) -> None:
    now = [0.0]
    store = MemoryProcessedStore(ttl=10, clock=lambda: now[0])
    await _check_dedup(store, unique)
    await store.mark("k")
    now[0] = 9.9
    assert await store.seen("k")
    now[0] = 10.0
    assert not await store.seen("k")


@pytest.mark.integration
async def test_redis_store(redis_url: str, unique: str) -> None:
    from culture_events.backends.redis import RedisProcessedStore

    store = RedisProcessedStore(redis_url, prefix=f"{unique}:", ttl=60)
    try:
        await _check_dedup(store, unique)
        ttl = await store._redis.ttl(f"{unique}:-:{unique}-1")
        assert 0 < ttl <= 60
    finally:
        await store.close()


@pytest.mark.integration
async def test_postgres_store(postgres_dsn: str, unique: str) -> None:
    import asyncpg

    from culture_events.backends.postgres import PostgresProcessedStore

    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        store = PostgresProcessedStore(pool, table=f"processed_{unique}", ttl=60)
        await store.create_table()
        await _check_dedup(store, unique)
        await pool.execute(f"DROP TABLE processed_{unique}")
    finally:
        await pool.close()
