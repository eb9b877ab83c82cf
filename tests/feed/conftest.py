"""Fixtures of the feed tests: a FeedStore on the stack's Cassandra in a keyspace of its own (one per
test module, dropped after); tests use their own user ids, so they never assume an empty server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from culture_feed.settings import FeedSettings
from culture_feed.store import FeedStore
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.server import Context


@pytest.fixture(scope="session")
def cassandra_up(stack_ctx: Context) -> Context:
    """Only Cassandra (started if it is not running; idempotent)."""
    stack.up(stack_ctx, registry.select(["cassandra"]))
    return stack_ctx


#: one hour buckets: the tests' items cross bucket boundaries within a few hours of event time
BUCKET = 3600


@pytest_asyncio.fixture(scope="module")
async def feed_store(cassandra_up: Context) -> AsyncIterator[FeedStore]:
    keyspace = f"feed_t{uuid.uuid4().hex[:10]}"
    platform = PlatformSettings()
    settings = FeedSettings(keyspace=keyspace, bucket_seconds=BUCKET, celebrity_threshold=5,
                            celebrity_cache_seconds=0, write_concurrency=32, item_ttl_days=0)
    store = FeedStore(platform.cassandra_contact_points or "", platform.cassandra_port, settings)
    await store.connect()
    try:
        yield store
    finally:
        store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        await store.close()
