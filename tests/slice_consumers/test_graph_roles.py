"""The graph service on the real stack (Neo4j, Kafka), every role a `culture serve graph` subprocess:
the worker builds users, works and interests from real events (redelivered and out of order); Follow
through api-write reaches Kafka through the relay exactly once and in order per follower, also while
Kafka is away; api-read answers over gRPC; bad input is INVALID_ARGUMENT with field violations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest
import pytest_asyncio
from _consumers_support import (
    BOOTSTRAP,
    Role,
    TopicWatch,
    consumed_up_to_now,
    ns,
    publish_event,
    start_at_end,
)
from google.protobuf import timestamp_pb2

from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.outbox.neo4j import Neo4jOutbox, driver_from_uri
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy
from culture_grpc.errors import field_violations_of
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

CONSUMED = [topic_of(c) for c in (identity_events_pb2.UserRegistered, catalog_events_pb2.WorkCreated,
                                  catalog_events_pb2.WorkUpdated, catalog_events_pb2.ReviewCreated,
                                  catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted)]
FOLLOW_CREATED = topic_of(graph_events_pb2.FollowCreated)
FOLLOW_REMOVED = topic_of(graph_events_pb2.FollowRemoved)


class Graph:
    def __init__(self, write: Role, read: Role, unique: str) -> None:
        self.unique = unique
        self.channels = [grpc.aio.insecure_channel(f"{HOST}:{r.port}") for r in (write, read)]
        self.w = graph_pb2_grpc.GraphServiceStub(self.channels[0])
        self.r = graph_pb2_grpc.GraphServiceStub(self.channels[1])
        self.driver = driver_from_uri(PlatformSettings().neo4j_uri or "")

    def id(self, name: str) -> str:
        return f"{self.unique}-{name}"

    async def query(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        records, _, _ = await self.driver.execute_query(cypher, params)
        return [dict(r) for r in records]

    async def close(self) -> None:
        for c in self.channels:
            await c.close()
        p = self.unique
        await Neo4jOutbox(f"GraphOutbox_{p}").drop(self.driver)
        for label, prop in (("User", "user_id"), ("Work", "work_id"), ("Genre", "slug"),
                            ("ReviewTombstone", "review_id")):
            await self.query(f"MATCH (n:{label}) WHERE n.{prop} STARTS WITH $p DETACH DELETE n", p=p)
        await self.driver.close()


@pytest.fixture(scope="session")
def graph_servers(stack_ctx: Context) -> Context:
    stack.up(stack_ctx, registry.select(["kafka", "neo4j"]))
    return stack_ctx


@pytest_asyncio.fixture
async def graph(graph_servers: Context, unique: str,
                roles: Callable[..., Role]) -> AsyncIterator[tuple[Graph, dict[str, str]]]:
    env = {"CULTURE_GRAPH_CONSUMER_GROUP": f"graph-{unique}",
           "CULTURE_GRAPH_OUTBOX_LABEL": f"GraphOutbox_{unique}",
           "CULTURE_GRAPH_RELAY_POLL_SECONDS": "0.2"}
    await start_at_end(env["CULTURE_GRAPH_CONSUMER_GROUP"], [ns(t) for t in CONSUMED])
    started = [roles("graph", r, env) for r in ("api-write", "api-read", "worker")]
    g = Graph(started[0], started[1], unique)
    try:
        for role in started:
            await role.serving()
        yield g, env
    finally:
        for role in started:
            role.stop()
        await g.close()


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


async def register(g: Graph, *names: str) -> None:
    for name in names:
        await publish_event(identity_events_pb2.UserRegistered(user_id=g.id(name), username=name,
                                                               register_time=ts(1_700_000_000)), job_id="j")

    async def known() -> bool:
        rows = await g.query("MATCH (u:User) WHERE u.user_id IN $ids RETURN count(u) AS n",
                             ids=[g.id(n) for n in names])
        return rows[0]["n"] == len(names)

    await wait_until(known, 60, "the worker to create the users", interval=0.2)


async def test_the_worker_mirrors_users_works_and_ratings_idempotently(
        graph: tuple[Graph, dict[str, str]]) -> None:
    g, env = graph
    await register(g, "ann")
    sf = f"{g.unique}-fiction/{g.unique}-scifi"
    await publish_event(catalog_events_pb2.WorkCreated(
        work_id=g.id("dune"), kind="book", title="Dune", genre_paths=[sf], version=1, create_time=ts(1)),
        job_id="j")
    created = catalog_events_pb2.ReviewCreated(review_id=g.id("r1"), work_id=g.id("dune"),
                                               author_user_id=g.id("ann"), rating=5, genre_slugs=[sf],
                                               version=1, create_time=ts(1_700_000_000))
    first = await publish_event(created, job_id="j")

    async def interests() -> dict[str, float]:
        rows = await g.query("MATCH (:User {user_id: $u})-[i:INTERESTED_IN]->(x:Genre) RETURN x.slug AS s, "
                             "i.weight AS w", u=g.id("ann"))
        return {r["s"]: r["w"] for r in rows}

    expected = {sf: 0.5, f"{g.unique}-fiction": 0.5}
    await wait_until(lambda: _equal(interests, expected), 60, "ann's interests", interval=0.2)

    # the review is lowered to 2 stars (version 2); then the old create is redelivered (same event id)
    await publish_event(catalog_events_pb2.ReviewUpdated(
        review_id=g.id("r1"), work_id=g.id("dune"), author_user_id=g.id("ann"), rating=2, previous_rating=5,
        genre_slugs=[sf], version=2, update_time=ts(1_700_000_100)), job_id="j")
    await publish_event(created, job_id="j", event_id=first.id)
    for topic in (topic_of(catalog_events_pb2.ReviewUpdated), topic_of(catalog_events_pb2.ReviewCreated)):
        await consumed_up_to_now(env["CULTURE_GRAPH_CONSUMER_GROUP"], ns(topic))
    rows = await g.query("MATCH (:User {user_id: $u})-[r:RATED]->(w:Work) RETURN w.work_id AS w, "
                         "r.rating AS rating, r.version AS v", u=g.id("ann"))
    assert rows == [{"w": g.id("dune"), "rating": 2, "v": 2}]
    assert await interests() == {}
    genres = await g.query("MATCH (:Work {work_id: $w})-[:IN_GENRE]->(x:Genre) RETURN x.slug AS s ORDER BY s",
                           w=g.id("dune"))
    assert [r["s"] for r in genres] == sorted([sf, f"{g.unique}-fiction"])


async def _equal(get: Callable[[], Awaitable[Any]], expected: Any) -> bool:
    return await get() == expected


async def test_follows_reach_kafka_once_in_order_per_follower_while_kafka_goes_away(
        graph: tuple[Graph, dict[str, str]], roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    g, env = graph
    names = ["a", "b", "c", "d", "e"]
    await register(g, *names)
    seen = await watch([ns(FOLLOW_CREATED), ns(FOLLOW_REMOVED)])
    host, _, port = BOOTSTRAP.rpartition(":")
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    relay = roles("graph", "relay", {**env, "CULTURE_KAFKA_BOOTSTRAP": proxy.bootstrap})
    try:
        await relay.serving()

        async def follow(a: str, b: str) -> graph_pb2.FollowResponse:
            ask = graph_pb2.FollowRequest(follower_user_id=g.id(a), followee_user_id=g.id(b))
            return await g.w.Follow(ask, timeout=30)

        assert (await follow("a", "b")).created
        assert not (await follow("a", "b")).created  # a no-op: no second edge, no second event
        await wait_until(lambda: len(seen.on(ns(FOLLOW_CREATED))) == 1, 60, "the first event", interval=0.1)

        await proxy.close()  # Kafka is down for the relay
        expected: dict[str, list[str]] = {"a": ["b"]}
        for a in names:
            for b in names:
                if a != b and (a, b) != ("a", "b"):
                    assert (await follow(a, b)).created
                    expected.setdefault(a, []).append(b)
        removed = await g.w.Unfollow(graph_pb2.UnfollowRequest(follower_user_id=g.id("a"),
                                                               followee_user_id=g.id("b")), timeout=30)
        assert removed.removed
        await proxy.open()  # Kafka is back

        total = sum(len(v) for v in expected.values())
        await wait_until(lambda: len(seen.on(ns(FOLLOW_CREATED))) >= total
                         and len(seen.on(ns(FOLLOW_REMOVED))) >= 1, 120, "every follow event", interval=0.2)
        created = seen.on(ns(FOLLOW_CREATED))
        assert len({m.id for m in created}) == len(created) == total, "an event was published twice"
        for a, followees in expected.items():
            got = [decode(m, graph_events_pb2.FollowCreated).followee_user_id for m in created
                   if m.key == g.id(a)]
            assert got == [g.id(b) for b in followees], a
        (gone,) = seen.on(ns(FOLLOW_REMOVED))
        event = decode(gone, graph_events_pb2.FollowRemoved)
        assert (event.follower_user_id, event.followee_user_id) == (g.id("a"), g.id("b"))
    finally:
        relay.stop()
        await proxy.close()

    # the read side over gRPC: a follows c, d, e (b was unfollowed), newest first
    page = await g.r.ListFollowing(graph_pb2.ListFollowingRequest(user_id=g.id("a"), page_size=2), timeout=30)
    more = await g.r.ListFollowing(graph_pb2.ListFollowingRequest(
        user_id=g.id("a"), page_size=2, page_token=page.next_page_token), timeout=30)
    assert [f.followee_user_id for f in [*page.follows, *more.follows]] == [g.id(n) for n in "edc"]


async def test_bad_input_is_invalid_argument_with_fields_and_unknown_users_not_found(
        graph: tuple[Graph, dict[str, str]]) -> None:
    g, _ = graph
    await register(g, "a")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.w.Follow(graph_pb2.FollowRequest(follower_user_id=g.id("a"), followee_user_id=g.id("a")),
                         timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations_of(err.value) == {"followee_user_id": "a user cannot follow themselves"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.w.Follow(graph_pb2.FollowRequest(follower_user_id="bad\x00id", followee_user_id=""),
                         timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations_of(err.value)) == {"follower_user_id", "followee_user_id"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.w.Follow(graph_pb2.FollowRequest(follower_user_id=g.id("a"), followee_user_id=g.id("ghost")),
                         timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.r.Recommend(graph_pb2.RecommendRequest(user_id=g.id("a"), min_rating=9), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations_of(err.value)) == {"min_rating"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.r.ListFollowers(graph_pb2.ListFollowersRequest(user_id=g.id("a"), page_token="x"), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations_of(err.value)) == {"page_token"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await g.r.Recommend(graph_pb2.RecommendRequest(user_id=g.id("ghost")), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
