"""The graph roles `culture serve graph --role ...` runs (see the package docstring)."""

from __future__ import annotations

import logging

from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.backends.kafka import relay_publisher
from culture_events.message import Message
from culture_events.outbox.neo4j import Neo4jStore
from culture_events.outbox.relay import Relay
from culture_events.router import Router
from culture_graph.pointer import resolve
from culture_graph.service import GraphReader, GraphWriter
from culture_graph.settings import GraphSettings
from culture_graph.store import GraphStore
from culture_graph.worker import FollowMirror, RatingMirror, UserCreator, WorkMirror
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring, run_worker, try_ensure_topics

log = logging.getLogger("culture_graph")

FOLLOW_EVENTS = (graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved)
#: the topics the graph publishes through its outbox (created by the relay at start)
TOPICS = tuple(topic_of(cls) for cls in (*FOLLOW_EVENTS, graph_events_pb2.InterestsGained))
WORK_EVENTS = (catalog_events_pb2.WorkCreated, catalog_events_pb2.WorkUpdated)
REVIEW_EVENTS = (catalog_events_pb2.ReviewCreated, catalog_events_pb2.ReviewUpdated,
                 catalog_events_pb2.ReviewDeleted)

_SERVICE = graph_pb2.DESCRIPTOR.services_by_name["GraphService"]


def _store(platform: PlatformSettings, settings: GraphSettings) -> GraphStore:
    return GraphStore(platform.neo4j_uri or "", database=settings.database,
                      outbox_label=settings.outbox_label, topic=platform.topic,
                      label_prefix=settings.label_prefix)


async def _settings(platform: PlatformSettings, role: str) -> GraphSettings:
    """GraphSettings with the label prefix and consumer group the pointer names (culture_graph.pointer)."""
    settings = GraphSettings()
    resolved = await resolve(settings, platform.neo4j_uri or "")
    if resolved.label_prefix != settings.label_prefix:
        log.info("graph %s: label prefix %r points to label prefix %r (consumer group %s)", role,
                 settings.label_prefix, resolved.label_prefix, resolved.consumer_group)
    return resolved


async def worker() -> None:
    """Consume identity.user-registered (users; UserNodeCreated for the registration job), catalog work
    events (works, genres), review events (ratings, interests) and follow events (FOLLOWS)."""
    platform = PlatformSettings().require("neo4j_uri", "kafka_bootstrap")
    settings = await _settings(platform, "worker")
    store = _store(platform, settings)

    def install(router: Router, wiring: Wiring) -> None:
        sub = wiring.subscriber
        registered = platform.topic(topic_of(identity_events_pb2.UserRegistered))
        async def publish(topic: str, msg: Message) -> None:
            await wiring.publisher.publish(topic, msg)

        router.add_consumer_handler("graph.user", registered, sub,
                                    UserCreator(store, publish, platform.topic))
        for cls in WORK_EVENTS:
            router.add_consumer_handler(f"graph.{cls.__name__}", platform.topic(topic_of(cls)), sub,
                                        WorkMirror(store, cls))
        for cls in REVIEW_EVENTS:
            router.add_consumer_handler(f"graph.{cls.__name__}", platform.topic(topic_of(cls)), sub,
                                        RatingMirror(store, cls))
        for cls in FOLLOW_EVENTS:
            router.add_consumer_handler(f"graph.{cls.__name__}", platform.topic(topic_of(cls)), sub,
                                        FollowMirror(store, cls))

    node_created = platform.topic(topic_of(graph_events_pb2.UserNodeCreated))
    await run_worker("graph", settings, install, platform=platform, on_start=store.connect,
                     on_stop=store.close, extra_topics=[node_created])


async def relay() -> None:
    """Publish the committed outbox entries (FollowCreated, FollowRemoved, InterestsGained) to Kafka."""
    platform, settings = PlatformSettings().require("neo4j_uri", "kafka_bootstrap"), GraphSettings()
    outbox_relay = Relay(
        Neo4jStore(platform.neo4j_uri or "", settings.outbox_label, database=settings.database,
                   lease=settings.relay_lease_seconds),
        lambda: relay_publisher(platform.kafka_bootstrap, "culture-graph-relay"),
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_seconds,
        report=lambda line: log.info("graph %s", line),
    )

    async def start() -> None:
        await try_ensure_topics(platform.kafka_bootstrap, [platform.topic(t) for t in TOPICS],
                                settings.topic_partitions, role="graph relay")

    await run_grpc_service("graph relay", on_start=start, background=[outbox_relay.run])


async def api_write() -> None:
    """GraphService commands over gRPC: Follow, Unfollow."""
    platform = PlatformSettings().require("neo4j_uri")
    settings = await _settings(platform, "api-write")
    store = _store(platform, settings)
    await run_grpc_service(
        "graph api-write",
        [(_SERVICE, GraphWriter(store), graph_pb2_grpc.add_GraphServiceServicer_to_server)],
        on_start=store.connect, on_stop=store.close)


async def api_read() -> None:
    """GraphService queries over gRPC."""
    platform = PlatformSettings().require("neo4j_uri")
    settings = await _settings(platform, "api-read")
    store = _store(platform, settings)
    await run_grpc_service(
        "graph api-read",
        [(_SERVICE, GraphReader(store, settings), graph_pb2_grpc.add_GraphServiceServicer_to_server)],
        on_start=store.connect, on_stop=store.close)


ROLES = {"api-write": api_write, "api-read": api_read, "worker": worker, "relay": relay}
