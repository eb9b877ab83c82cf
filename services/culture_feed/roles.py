"""The feed roles `culture serve feed --role ...` runs (see the package docstring)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from culture.events.v1 import catalog_events_pb2, feed_events_pb2, graph_events_pb2, identity_events_pb2
from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture.graph.v1 import graph_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.message import Message
from culture_events.router import Router
from culture_feed import pointer
from culture_feed.push import Notifier
from culture_feed.service import FeedReader
from culture_feed.settings import FeedSettings
from culture_feed.store import Authored, FeedStore
from culture_feed.worker import (
    FeedCreator,
    FollowersSource,
    FollowMirror,
    InterestBackfill,
    ReviewChanges,
    ReviewFanOut,
    feed_chain,
)
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring, run_worker

log = logging.getLogger("culture_feed")

#: the topics the feed publishes
TOPICS = tuple(topic_of(cls) for cls in (feed_events_pb2.FeedCreated, feed_events_pb2.FeedCreationFailed))
FOLLOW_EVENTS = (graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved)
REVIEW_CHANGES = (catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted)

_SERVICE = feed_pb2.DESCRIPTOR.services_by_name["FeedService"]


async def _active(platform: PlatformSettings, settings: FeedSettings) -> FeedSettings:
    """The settings with the keyspace (and consumer group) a rebuild switched the feed to, if any."""
    active = await asyncio.to_thread(pointer.resolve, settings, platform.cassandra_contact_points or "",
                                     platform.cassandra_port)
    if active.keyspace != settings.keyspace:
        log.info("feed: %s points to keyspace %s (consumer group %s), rebuilt by culture replay feed",
                 settings.keyspace, active.keyspace, active.consumer_group)
    return active


def _store(platform: PlatformSettings, settings: FeedSettings) -> FeedStore:
    return FeedStore(platform.cassandra_contact_points or "", platform.cassandra_port, settings)


async def worker() -> None:
    """Consume identity.user-registered (feeds), catalog review events (fan-out, updates), graph
    follow events (mirror, backfill) and interest gains (backfill in the new genres); publish "new
    items" notices to Redis (push.py)."""
    platform = PlatformSettings().require("cassandra_contact_points", "kafka_bootstrap", "redis_url")
    settings = await _active(platform, FeedSettings().require("graph_read"))
    store = _store(platform, settings)
    channel: dict[str, Any] = {}
    notifier = Notifier(platform.redis_url or "")

    async def notify(authored: Authored, readers: list[str]) -> None:
        await notifier.new_items(readers, authored.item.actor_user_id, authored.item.review_id)

    def install(router: Router, wiring: Wiring) -> None:
        sub = wiring.subscriber

        async def publish(topic: str, msg: Message) -> None:
            await wiring.publisher.publish(topic, msg)

        followers = FollowersSource(lambda: channel["stub"], settings)
        registered = platform.topic(topic_of(identity_events_pb2.UserRegistered))
        router.add_consumer_handler("feed.user", registered, sub,
                                    FeedCreator(store, settings, publish, platform.topic))
        router.add_consumer_handler("feed.ReviewCreated",
                                    platform.topic(topic_of(catalog_events_pb2.ReviewCreated)), sub,
                                    ReviewFanOut(store, followers, settings, on_copied=notify))
        for cls in REVIEW_CHANGES:
            router.add_consumer_handler(f"feed.{cls.__name__}", platform.topic(topic_of(cls)), sub,
                                        ReviewChanges(store, cls))
        for cls in FOLLOW_EVENTS:
            router.add_consumer_handler(f"feed.{cls.__name__}", platform.topic(topic_of(cls)), sub,
                                        FollowMirror(store, settings, cls, on_copied=notify))
        router.add_consumer_handler("feed.InterestsGained",
                                    platform.topic(topic_of(graph_events_pb2.InterestsGained)), sub,
                                    InterestBackfill(store, settings, on_copied=notify))

    async def start() -> None:
        channel["channel"] = grpc.aio.insecure_channel(settings.graph_read or "")
        channel["stub"] = graph_pb2_grpc.GraphServiceStub(channel["channel"])
        await store.connect()

    async def stop() -> None:
        if "channel" in channel:
            await channel["channel"].close()
        await notifier.close()
        await store.close()

    await run_worker("feed", settings, install, platform=platform, chain=feed_chain, on_start=start,
                     on_stop=stop,
                     extra_topics=[platform.topic(t) for t in TOPICS])


async def api_read() -> None:
    """FeedService.GetFeed over gRPC."""
    platform = PlatformSettings().require("cassandra_contact_points")
    settings = await _active(platform, FeedSettings())
    store = _store(platform, settings)
    await run_grpc_service(
        "feed api-read",
        [(_SERVICE, FeedReader(store, settings), feed_pb2_grpc.add_FeedServiceServicer_to_server)],
        on_start=store.connect, on_stop=store.close)


ROLES = {"api-read": api_read, "worker": worker}
