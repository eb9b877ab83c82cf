"""Cassandra away during a fan-out, for the feed worker only: the worker reaches the stack's Cassandra
through a TCP proxy this test closes and reopens (the shared node itself is never stopped; other
tests use it). The review is retried while Cassandra is away, nothing is poisoned, and the item
appears once it is back. The graph is a stub gRPC server (this test is about Cassandra)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import grpc
import pytest
from _consumers_support import Role, TopicWatch, ns, publish_event, start_at_end

from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.testing import wait_until
from culture_events.testing.tcp_proxy import TcpProxy
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

FEED_CONSUMES = [topic_of(c) for c in (identity_events_pb2.UserRegistered, catalog_events_pb2.ReviewCreated,
                                       catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted,
                                       graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved,
                                       graph_events_pb2.InterestsGained)]


class StubGraph(graph_pb2_grpc.GraphServiceServicer):
    def __init__(self) -> None:
        self.followers: dict[str, list[str]] = {}

    async def FollowersInterestedIn(
            self, request: graph_pb2.FollowersInterestedInRequest,
            context: grpc.aio.ServicerContext) -> graph_pb2.FollowersInterestedInResponse:
        followers = self.followers.get(request.user_id, [])
        return graph_pb2.FollowersInterestedInResponse(follower_user_ids=followers)


async def test_a_fan_out_waits_out_cassandra_and_lands_after_it_is_back(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    stack.up(consumer_servers, registry.select(["cassandra"]))
    plat = PlatformSettings()
    proxy = TcpProxy((plat.cassandra_contact_points or "").split(",")[0], plat.cassandra_port)
    await proxy.open()
    graph = StubGraph()
    server = grpc.aio.server()
    graph_pb2_grpc.add_GraphServiceServicer_to_server(graph, server)
    graph_port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    group, keyspace = f"feed-{unique}", f"feed_{unique}"
    env = {"CULTURE_FEED_CONSUMER_GROUP": group, "CULTURE_FEED_KEYSPACE": keyspace,
           "CULTURE_FEED_GRAPH_READ": f"{HOST}:{graph_port}", "CULTURE_FEED_REQUEST_TIMEOUT_SECONDS": "3",
           "CULTURE_FEED_RETRY_MAX": "1", "CULTURE_FEED_RETRY_INITIAL_SECONDS": "0.1"}
    await start_at_end(group, [ns(t) for t in FEED_CONSUMES])
    poison = await watch([f"{group}.poison"])
    worker = roles("feed", "worker", {**env, "CULTURE_CASSANDRA_PORT": str(proxy.port)})
    reader = roles("feed", "api-read", env)  # reads Cassandra directly
    try:
        await worker.serving(within=120)
        await reader.serving(within=120)
        author, fan = f"{unique}-author", f"{unique}-fan"
        graph.followers[author] = [fan]
        registered = identity_events_pb2.UserRegistered(user_id=fan, username=f"{unique}fan")
        await publish_event(registered, job_id="j")
        async with grpc.aio.insecure_channel(f"{HOST}:{reader.port}") as channel:
            stub = feed_pb2_grpc.FeedServiceStub(channel)

            async def feed() -> list[str] | None:
                try:
                    reply = await stub.GetFeed(feed_pb2.GetFeedRequest(user_id=fan), timeout=10)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.NOT_FOUND:
                        return None
                    raise
                return [i.review.review_id for i in reply.items]

            async def created() -> bool:
                return await feed() is not None

            await wait_until(created, 60, "the fan's feed", interval=0.2)
            assert await feed() == []
            await proxy.close()  # Cassandra is away for the worker
            review = catalog_events_pb2.ReviewCreated(review_id=f"{unique}-r1", work_id="w",
                                                      work_title="Dune", author_user_id=author, rating=5,
                                                      genre_slugs=["fiction"], version=1)
            review.create_time.GetCurrentTime()
            await publish_event(review, job_id="j")
            await wait_until(lambda: "Cassandra unavailable" in worker.output(), 90,
                             "the worker to wait for Cassandra", interval=0.2)
            assert await feed() == []
            await proxy.open()  # back
            await wait_until(lambda: _equal(feed, [f"{unique}-r1"]), 120, "the item after Cassandra is back",
                             interval=0.3)
        assert poison.on(f"{group}.poison") == []
        assert "Cassandra unavailable" in worker.output()
    finally:
        worker.stop()
        reader.stop()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await proxy.close()
        await asyncio.to_thread(_drop_keyspace, keyspace)


async def test_feed_roles_started_while_cassandra_is_away_wait_for_it_and_then_serve(
        consumer_servers: Context, unique: str, roles: Callable[..., Role]) -> None:
    """A role that starts before Cassandra answers (a node restarting, or too busy for a handshake)
    keeps trying within CULTURE_FEED_START_TIMEOUT_SECONDS instead of exiting, then serves."""
    stack.up(consumer_servers, registry.select(["cassandra"]))
    plat = PlatformSettings()
    proxy = TcpProxy((plat.cassandra_contact_points or "").split(",")[0], plat.cassandra_port)
    await proxy.open()
    await proxy.close()  # the port is known, nothing listens on it yet
    group, keyspace = f"feed-{unique}", f"feed_{unique}"
    env = {"CULTURE_FEED_CONSUMER_GROUP": group, "CULTURE_FEED_KEYSPACE": keyspace,
           "CULTURE_FEED_GRAPH_READ": f"{HOST}:1", "CULTURE_CASSANDRA_PORT": str(proxy.port)}
    worker = roles("feed", "worker", env)
    reader = roles("feed", "api-read", env)
    try:
        for role in (worker, reader):
            await wait_until(lambda r=role: "Cassandra not reachable yet" in r.output(), 60,
                             f"feed {role.role} to wait for Cassandra", interval=0.2)
            assert role.proc is not None and role.proc.poll() is None, role.output()[-3000:]
        await proxy.open()
        await worker.serving(within=120)
        await reader.serving(within=120)
        async with grpc.aio.insecure_channel(f"{HOST}:{reader.port}") as channel:
            stub = feed_pb2_grpc.FeedServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:  # the keyspace exists and has no such feed
                await stub.GetFeed(feed_pb2.GetFeedRequest(user_id=f"{unique}-nobody"), timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        worker.stop()
        reader.stop()
        await proxy.close()
        await asyncio.to_thread(_drop_keyspace, keyspace)


async def _equal(get: Callable[[], Awaitable[object]], expected: object) -> bool:
    return await get() == expected


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    plat = PlatformSettings()
    cluster = Cluster((plat.cassandra_contact_points or "").split(","), port=plat.cassandra_port,
                      protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()

