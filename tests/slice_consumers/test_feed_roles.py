"""The feed on the real stack (Cassandra, Neo4j, Kafka), every role a `culture serve` subprocess beside
the graph's: a review reaches the followers interested in its genre and no one else, a redelivery
adds nothing, an unfollow stops new items, and a username the admission policy refuses gets
FeedCreationFailed with the reason instead of a feed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import grpc
import pytest
import pytest_asyncio
from _consumers_support import (
    Role,
    TopicWatch,
    consumed_up_to_now,
    ns,
    publish_event,
    start_at_end,
    topic_ends,
)
from google.protobuf import timestamp_pb2

from culture.events.v1 import catalog_events_pb2, feed_events_pb2, graph_events_pb2, identity_events_pb2
from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.outbox.neo4j import driver_from_uri
from culture_events.testing import wait_until
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

GRAPH_CONSUMES = [topic_of(c) for c in (identity_events_pb2.UserRegistered, catalog_events_pb2.WorkCreated,
                                        catalog_events_pb2.WorkUpdated, catalog_events_pb2.ReviewCreated,
                                        catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted)]
FEED_CONSUMES = [topic_of(c) for c in (identity_events_pb2.UserRegistered, catalog_events_pb2.ReviewCreated,
                                       catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted,
                                       graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved,
                                       graph_events_pb2.InterestsGained)]
REVIEW_CREATED = topic_of(catalog_events_pb2.ReviewCreated)
FEED_CREATED = topic_of(feed_events_pb2.FeedCreated)
CREATION_FAILED = topic_of(feed_events_pb2.FeedCreationFailed)
NODE_CREATED = topic_of(graph_events_pb2.UserNodeCreated)


@pytest.fixture(scope="session")
def feed_servers(stack_ctx: Context) -> Context:
    stack.up(stack_ctx, registry.select(["kafka", "neo4j", "cassandra"]))
    return stack_ctx


class Platform:
    def __init__(self, unique: str, graph_write: Role, graph_read: Role, feed_read: Role,
                 feed_env: dict[str, str]) -> None:
        self.unique, self.feed_env = unique, feed_env
        self.channels = [grpc.aio.insecure_channel(f"{HOST}:{r.port}") for r in (graph_write, graph_read,
                                                                                 feed_read)]
        self.graph_w = graph_pb2_grpc.GraphServiceStub(self.channels[0])
        self.graph_r = graph_pb2_grpc.GraphServiceStub(self.channels[1])
        self.feed = feed_pb2_grpc.FeedServiceStub(self.channels[2])

    def id(self, name: str) -> str:
        return f"{self.unique}-{name}"

    async def feed_of(self, name: str) -> list[str]:
        """The review ids in a user's feed, newest first ([] while it has no feed row)."""
        try:
            reply = await self.feed.GetFeed(feed_pb2.GetFeedRequest(user_id=self.id(name), page_size=100),
                                            timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return []
            raise
        return [i.review.review_id for i in reply.items]

    async def close(self) -> None:
        for c in self.channels:
            await c.close()


@pytest_asyncio.fixture
async def platform(feed_servers: Context, unique: str,
                   roles: Callable[..., Role]) -> AsyncIterator[Platform]:
    keyspace = f"feed_{unique}"
    graph_env = {"CULTURE_GRAPH_CONSUMER_GROUP": f"graph-{unique}",
                 "CULTURE_GRAPH_OUTBOX_LABEL": f"GraphOutbox_{unique}",
                 "CULTURE_GRAPH_RELAY_POLL_SECONDS": "0.2"}
    await start_at_end(graph_env["CULTURE_GRAPH_CONSUMER_GROUP"], [ns(t) for t in GRAPH_CONSUMES])
    graph = [roles("graph", r, graph_env) for r in ("api-write", "api-read", "worker", "relay")]
    feed_env = {"CULTURE_FEED_CONSUMER_GROUP": f"feed-{unique}", "CULTURE_FEED_KEYSPACE": keyspace,
                "CULTURE_FEED_GRAPH_READ": f"{HOST}:{graph[1].port}",
                "CULTURE_FEED_REFUSED_USERNAMES": f"svc-{unique}-.*"}
    await start_at_end(feed_env["CULTURE_FEED_CONSUMER_GROUP"], [ns(t) for t in FEED_CONSUMES])
    feed = [roles("feed", r, feed_env) for r in ("worker", "api-read")]
    for role in [*graph, *feed]:
        await role.serving(within=120)
    p = Platform(unique, graph[0], graph[1], feed[1], feed_env)
    try:
        yield p
    finally:
        for role in [*graph, *feed]:
            role.stop()
        await p.close()
        await _cleanup(unique, keyspace)


async def _cleanup(unique: str, keyspace: str) -> None:
    import asyncio

    driver = driver_from_uri(PlatformSettings().neo4j_uri or "")
    try:
        for label, prop in (("User", "user_id"), ("Work", "work_id"), ("Genre", "slug"),
                            ("ReviewTombstone", "review_id")):
            await driver.execute_query(f"MATCH (n:{label}) WHERE n.{prop} STARTS WITH $p DETACH DELETE n",
                                       {"p": unique})
        label = f"GraphOutbox_{unique}"
        for lb in (label, f"{label}Seq", f"{label}Lock"):
            await driver.execute_query(f"MATCH (n:`{lb}`) DETACH DELETE n")
        low = label.lower()
        for name in ("id", "lease_until", "lease", "key", "seq_key", "lock_name"):
            await driver.execute_query(f"DROP CONSTRAINT {low}_{name} IF EXISTS")
            await driver.execute_query(f"DROP INDEX {low}_{name} IF EXISTS")
    finally:
        await driver.close()

    def drop() -> None:
        from cassandra.cluster import Cluster

        plat = PlatformSettings()
        cluster = Cluster((plat.cassandra_contact_points or "").split(","), port=plat.cassandra_port,
                          protocol_version=5)
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        finally:
            cluster.shutdown()

    await asyncio.to_thread(drop)


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


async def test_a_review_reaches_interested_followers_only_once_and_stops_after_unfollow(
        platform: Platform) -> None:
    p = platform
    for name in ("a", "b", "c"):
        user = identity_events_pb2.UserRegistered(user_id=p.id(name), username=f"{p.unique}{name}",
                                                  register_time=ts(1_700_000_000))
        await publish_event(user, job_id="j")
    sf, romance = f"{p.unique}-fiction/{p.unique}-scifi", f"{p.unique}-romance"
    for work, genre in (("dune", sf), ("emma", romance)):
        await publish_event(catalog_events_pb2.WorkCreated(work_id=p.id(work), kind="book", title=work,
                                                           genre_paths=[genre], version=1, create_time=ts(1)),
                            job_id="j")

    def review(author: str, rid: str, work: str, genre: str, at: int) -> catalog_events_pb2.ReviewCreated:
        return catalog_events_pb2.ReviewCreated(
            review_id=p.id(rid), work_id=p.id(work), work_title=work, author_user_id=p.id(author), rating=5,
            genre_slugs=[genre], excerpt=f"{rid} text", create_time=ts(at), version=1, work_kind="book")

    async def interested_in_sf_of_b() -> list[str]:
        try:
            reply = await p.graph_r.FollowersInterestedIn(
                graph_pb2.FollowersInterestedInRequest(user_id=p.id("b"), genre_slugs=[sf]), timeout=10)
        except grpc.aio.AioRpcError:
            return []
        return list(reply.follower_user_ids)

    # a and c get interests (a: science fiction, c: romance); both follow b
    await wait_until(lambda: _users_known(p), 90, "the graph and the feed to know the users", interval=0.3)
    await publish_event(review("a", "ra", "dune", sf, 1_700_000_100), job_id="j")
    await publish_event(review("c", "rc", "emma", romance, 1_700_000_100), job_id="j")
    followed = ns(topic_of(graph_events_pb2.FollowCreated))
    before = await _published(followed)
    for follower in ("a", "c"):
        await p.graph_w.Follow(graph_pb2.FollowRequest(follower_user_id=p.id(follower),
                                                       followee_user_id=p.id("b")), timeout=30)
    # both follows handled by the feed before b reviews: a follow's backfill copies the followee's
    # recent items whatever their genre (docs/feed.md), so a late follow of c's would copy rb1 too
    await wait_until(lambda: _grew(followed, before, 2), 60, "both follow events on Kafka", interval=0.2)
    await consumed_up_to_now(p.feed_env["CULTURE_FEED_CONSUMER_GROUP"], followed)
    await wait_until(lambda: _equal(interested_in_sf_of_b, [p.id("a")]), 90, "a's interest in sf",
                     interval=0.3)

    first = await publish_event(review("b", "rb1", "dune", sf, 1_700_000_200), job_id="j")
    await wait_until(lambda: _equal(lambda: p.feed_of("a"), [p.id("rb1")]), 30, "b's review in a's feed",
                     interval=0.1)
    assert await p.feed_of("c") == []  # the fan-out that reached a is done: c was never a recipient

    # redelivery: the same event again adds nothing
    await publish_event(review("b", "rb1", "dune", sf, 1_700_000_200), job_id="j", event_id=first.id)
    await consumed_up_to_now(p.feed_env["CULTURE_FEED_CONSUMER_GROUP"], ns(REVIEW_CREATED))
    assert await p.feed_of("a") == [p.id("rb1")]

    # c comes to like science fiction after b's review was fanned out (c's rating reaches the graph
    # later): the graph's InterestsGained brings b's recent science fiction review into c's feed
    await publish_event(review("c", "rc2", "dune", sf, 1_700_000_250), job_id="j")
    await wait_until(lambda: _equal(lambda: p.feed_of("c"), [p.id("rb1")]), 60,
                     "b's science fiction review in c's feed once c is interested", interval=0.2)

    # unfollow: b's next review does not reach a (the existing item stays)
    await p.graph_w.Unfollow(graph_pb2.UnfollowRequest(follower_user_id=p.id("a"),
                                                       followee_user_id=p.id("b")), timeout=30)
    await publish_event(review("b", "rb2", "dune", sf, 1_700_000_300), job_id="j")
    await consumed_up_to_now(p.feed_env["CULTURE_FEED_CONSUMER_GROUP"], ns(REVIEW_CREATED))
    assert await p.feed_of("a") == [p.id("rb1")]


async def _published(topic: str) -> int:
    """How many records `topic` holds in all (the sum of its partitions' end offsets)."""
    return sum((await topic_ends(topic)).values())


async def _grew(topic: str, before: int, by: int) -> bool:
    return await _published(topic) >= before + by


async def _users_known(p: Platform) -> bool:
    for name in ("a", "b", "c"):
        try:
            await p.feed.GetFeed(feed_pb2.GetFeedRequest(user_id=p.id(name)), timeout=10)
            await p.graph_r.ListFollowers(graph_pb2.ListFollowersRequest(user_id=p.id(name)), timeout=10)
        except grpc.aio.AioRpcError:
            return False
    return True


async def _equal(get: Callable[[], Awaitable[object]], expected: object) -> bool:
    return await get() == expected


async def test_the_admission_policy_refuses_a_feed_with_the_reason(
        platform: Platform, watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    p = platform
    seen = await watch([ns(CREATION_FAILED), ns(FEED_CREATED), ns(NODE_CREATED)])
    refused = identity_events_pb2.UserRegistered(user_id=p.id("svc"), username=f"svc-{p.unique}-backup",
                                                 register_time=ts(1_700_000_000))
    fine = identity_events_pb2.UserRegistered(user_id=p.id("ok"), username=f"{p.unique}ok",
                                              register_time=ts(1_700_000_000))
    job = f"job-{uuid.uuid4().hex[:6]}"
    await publish_event(refused, job_id=job)
    await publish_event(fine, job_id=job + "-ok")
    failed = await wait_until(lambda: seen.on(ns(CREATION_FAILED), refused.user_id), 60,
                              "FeedCreationFailed", interval=0.1)
    await wait_until(lambda: seen.on(ns(FEED_CREATED), fine.user_id), 60, "FeedCreated", interval=0.1)
    event = decode(failed[0], feed_events_pb2.FeedCreationFailed)
    assert "admission policy" in event.reason and event.attempts == 1
    assert failed[0].metadata["correlation_id"] == job  # the job id travels on (the notifier's step)
    assert not seen.on(ns(FEED_CREATED), refused.user_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await p.feed.GetFeed(feed_pb2.GetFeedRequest(user_id=refused.user_id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    reply = await p.feed.GetFeed(feed_pb2.GetFeedRequest(user_id=fine.user_id), timeout=10)
    assert list(reply.items) == [] and not reply.next_page_token
    # the graph's step of the same registration jobs (the refused feed does not concern it)
    nodes = await wait_until(lambda: seen.on(ns(NODE_CREATED), refused.user_id), 60, "UserNodeCreated",
                             interval=0.1)
    assert nodes[0].metadata["correlation_id"] == job
    await wait_until(lambda: seen.on(ns(NODE_CREATED), fine.user_id), 60, "UserNodeCreated", interval=0.1)
