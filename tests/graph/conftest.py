"""Fixtures of the graph tests: a GraphStore on the stack's Neo4j whose nodes all carry this test's
unique prefix (ids, genre slugs) and whose outbox has its own label; everything is removed after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from culture_graph.store import GraphStore
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.server import Context

CLEANUP = [
    "MATCH (u:User) WHERE u.user_id STARTS WITH $p DETACH DELETE u",
    "MATCH (w:Work) WHERE w.work_id STARTS WITH $p DETACH DELETE w",
    "MATCH (g:Genre) WHERE g.slug STARTS WITH $p DETACH DELETE g",
    "MATCH (t:ReviewTombstone) WHERE t.review_id STARTS WITH $p DETACH DELETE t",
    "MATCH (t:FollowTombstone) WHERE t.pair STARTS WITH $p DETACH DELETE t",
]


@pytest.fixture(scope="session")
def graph_servers(stack_ctx: Context) -> Context:
    """Only the servers the graph uses: Neo4j and Kafka."""
    stack.up(stack_ctx, registry.select(["neo4j", "kafka"]))
    return stack_ctx


async def cleanup(store: GraphStore, prefix: str) -> None:
    assert store.driver is not None
    for cypher in CLEANUP:
        await store.driver.execute_query(cypher, p=prefix)


@pytest_asyncio.fixture
async def store(graph_servers: Context, unique: str) -> AsyncIterator[GraphStore]:
    s = GraphStore(PlatformSettings().neo4j_uri or "", outbox_label=f"GraphOutbox_{unique}")
    await s.connect()
    try:
        yield s
    finally:
        assert s.driver is not None
        try:
            await s.outbox.drop(s.driver)
            await cleanup(s, unique)
        finally:
            await s.close()

