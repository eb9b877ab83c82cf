"""The work cache on the real Redis: one database read for a cold key however many readers, and a
write's invalidation voids a fill that started before it (no stale entry afterwards)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from culture.catalog.v1 import catalog_pb2
from culture_catalog.cache import CacheMetrics, WorkCache
from culture_events.testing import wait_until
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.server import Context

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def redis(stack_ctx: Context, unique: str) -> AsyncIterator[Redis]:
    stack.up(stack_ctx, registry.select(["redis"]))
    client = Redis.from_url(PlatformSettings().redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{unique}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _cache(redis: Redis, unique: str, **kw: float) -> WorkCache:
    return WorkCache(redis, prefix=f"{unique}:", ttl=60, metrics=CacheMetrics(CollectorRegistry()), **kw)


async def test_a_cold_popular_key_costs_one_database_read(redis: Redis, unique: str) -> None:
    loads: list[Sequence[str]] = []
    gate = asyncio.Event()

    async def load(ids: Sequence[str]) -> dict[str, catalog_pb2.Work]:
        loads.append(ids)
        await gate.wait()
        return {i: catalog_pb2.Work(work_id=i, title="Hot") for i in ids}

    one, other = _cache(redis, unique), _cache(redis, unique)  # two processes' caches
    readers = [asyncio.ensure_future(c.get_many(["w1"], load)) for c in (one, other) for _ in range(25)]
    await wait_until(lambda: len(loads) == 1, 10, "the first load")
    gate.set()
    results = await asyncio.gather(*readers)
    assert all(r["w1"].title == "Hot" for r in results)
    assert len(loads) == 1  # one reader loaded; the rest shared its flight or waited for its fill
    again = await one.get_many(["w1"], load)
    assert again["w1"].title == "Hot" and len(loads) == 1
    assert one.metrics.hit_ratio > 0
    ratio = one.metrics.ratio.collect()[0].samples[0].value  # the exported gauge
    assert ratio == one.metrics.hit_ratio


async def test_an_invalidation_during_a_fill_keeps_the_old_value_out(redis: Redis, unique: str) -> None:
    cache = _cache(redis, unique)
    reading = asyncio.Event()
    release = asyncio.Event()

    async def slow_old_load(ids: Sequence[str]) -> dict[str, catalog_pb2.Work]:
        reading.set()
        await release.wait()  # the write commits and invalidates meanwhile
        return {i: catalog_pb2.Work(work_id=i, title="old") for i in ids}

    reader = asyncio.ensure_future(cache.get_many(["w2"], slow_old_load))
    await reading.wait()
    await cache.invalidate("w2")
    release.set()
    assert (await reader)["w2"].title == "old"  # the reader itself saw the old state...
    assert await redis.get(cache.key("w2")) is None  # ...but did not store it

    async def new_load(ids: Sequence[str]) -> dict[str, catalog_pb2.Work]:
        return {i: catalog_pb2.Work(work_id=i, title="new") for i in ids}

    assert (await cache.get_many(["w2"], new_load))["w2"].title == "new"
    assert (await cache.get_many(["w2"], slow_old_load))["w2"].title == "new"  # a hit now
