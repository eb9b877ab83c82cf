"""The chat roles `culture serve chat --role ...` runs (see the package docstring)."""

from __future__ import annotations

import logging

from culture.chat.v1 import chat_pb2, chat_pb2_grpc
from culture.events.v1 import chat_events_pb2
from culture_chat.claims import ClientIdClaims
from culture_chat.live import LivePublisher, Presence, redis_client
from culture_chat.service import ChatReader, ChatWriter
from culture_chat.settings import ChatSettings
from culture_chat.store import ChatStore
from culture_contracts.topics import topic_of
from culture_events.backends.kafka import relay_publisher
from culture_events.outbox.cassandra import CassandraStore
from culture_events.outbox.relay import Relay
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import try_ensure_topics

log = logging.getLogger("culture_chat")

#: the topic the chat publishes through its outbox
TOPIC = topic_of(chat_events_pb2.MessageSent)

_SERVICE = chat_pb2.DESCRIPTOR.services_by_name["ChatService"]


def _store(platform: PlatformSettings, settings: ChatSettings) -> ChatStore:
    return ChatStore(platform.cassandra_contact_points or "", platform.cassandra_port, settings)


def _relay(platform: PlatformSettings, settings: ChatSettings, store: ChatStore) -> Relay:
    return Relay(
        CassandraStore(lambda: store.session, store.outbox, lease_seconds=settings.relay_lease_seconds),
        lambda: relay_publisher(platform.kafka_bootstrap, "culture-chat-relay"),
        batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_seconds,
        report=lambda line: log.info("chat %s", line))


async def api_write() -> None:
    """ChatService commands over gRPC (CreateConversation, SendMessage, MarkRead, SetPresence); the
    `relay` role publishes the outbox entries SendMessage writes."""
    platform = PlatformSettings().require("cassandra_contact_points", "redis_url")
    settings = ChatSettings()
    store = _store(platform, settings)
    live = LivePublisher(platform.redis_url or "", settings.redis_prefix)
    redis = redis_client(platform.redis_url or "")
    claims = ClientIdClaims(redis, settings.redis_prefix, settings.client_id_ttl_seconds)
    writer = ChatWriter(store, live, Presence(redis, settings.redis_prefix), settings, platform.topic(TOPIC),
                        claims)

    async def start() -> None:
        await store.connect()
        await claims.start()

    async def stop() -> None:
        await live.close()
        await redis.aclose()
        await store.close()

    await run_grpc_service(
        "chat api-write", [(_SERVICE, writer, chat_pb2_grpc.add_ChatServiceServicer_to_server)],
        on_start=start, on_stop=stop)


async def relay() -> None:
    """Publish the committed outbox entries (chat.message-sent) from Cassandra to Kafka."""
    platform = PlatformSettings().require("cassandra_contact_points", "kafka_bootstrap")
    settings = ChatSettings()
    store = _store(platform, settings)

    async def start() -> None:
        await store.connect()
        await try_ensure_topics(platform.kafka_bootstrap, [platform.topic(TOPIC)],
                                settings.topic_partitions, role="chat relay")

    await run_grpc_service("chat relay", on_start=start, on_stop=store.close,
                           background=[_relay(platform, settings, store).run])


async def api_read() -> None:
    """ChatService queries over gRPC (History, GetConversation, ListConversations, GetPresence,
    StreamMessages)."""
    platform = PlatformSettings().require("cassandra_contact_points", "redis_url")
    settings = ChatSettings()
    store = _store(platform, settings)
    redis = redis_client(platform.redis_url or "")
    reader = ChatReader(store, Presence(redis, settings.redis_prefix), settings, platform.redis_url or "")

    async def stop() -> None:
        await redis.aclose()
        await store.close()

    await run_grpc_service(
        "chat api-read", [(_SERVICE, reader, chat_pb2_grpc.add_ChatServiceServicer_to_server)],
        on_start=store.connect, on_stop=stop, background=[reader.close_streams])


ROLES = {"api-write": api_write, "api-read": api_read, "relay": relay}
