"""The catalog roles `culture serve catalog --role ...` runs (see the package docstring)."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture.events.v1 import catalog_events_pb2, feed_events_pb2, identity_events_pb2
from culture_catalog.cache import WorkCache
from culture_catalog.service import CatalogReader, CatalogWriter
from culture_catalog.settings import CatalogSettings
from culture_catalog.store import EVENTS, CatalogStore
from culture_catalog.worker import INVALIDATING, CacheInvalidator, MarkProfileIncomplete, ProfileCreator
from culture_contracts.topics import topic_of
from culture_events.backends.kafka import relay_publisher
from culture_events.outbox.mongo import MongoStore
from culture_events.outbox.relay import Relay
from culture_events.router import Router
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring, run_worker, try_ensure_topics

log = logging.getLogger("culture_catalog")

#: the topics the catalog publishes through its outbox (created by the relay at start)
TOPICS = tuple(topic_of(cls) for cls in (*EVENTS, catalog_events_pb2.ProfileCreated))

_SERVICE = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]


def _store(platform: PlatformSettings, settings: CatalogSettings) -> CatalogStore:
    return CatalogStore(
        platform.mongo_uri, settings.database, settings.outbox_collection, topic=platform.topic
    )


def _cache(platform: PlatformSettings, settings: CatalogSettings) -> tuple[Redis, WorkCache]:
    redis = Redis.from_url(platform.redis_url)
    return redis, WorkCache(redis, prefix=settings.cache_prefix, ttl=settings.cache_ttl_seconds)


async def worker() -> None:
    """Consume identity.user-registered (profiles), feed.creation-failed (MarkProfileIncomplete) and
    the catalog's own work/review events (cache invalidation)."""
    platform = PlatformSettings().require("mongo_uri", "kafka_bootstrap", "redis_url")
    settings = CatalogSettings()
    store = _store(platform, settings)
    redis, cache = _cache(platform, settings)

    def install(router: Router, wiring: Wiring) -> None:
        sub = wiring.subscriber
        router.add_consumer_handler(
            "catalog.profile",
            platform.topic(topic_of(identity_events_pb2.UserRegistered)),
            sub,
            ProfileCreator(store),
        )
        router.add_consumer_handler(
            "catalog.mark-profile-incomplete",
            platform.topic(topic_of(feed_events_pb2.FeedCreationFailed)),
            sub,
            MarkProfileIncomplete(store),
        )
        for cls in INVALIDATING:
            router.add_consumer_handler(
                f"catalog.cache.{cls.__name__}",
                platform.topic(topic_of(cls)),
                sub,
                CacheInvalidator(cache, cls),
            )

    async def stop() -> None:
        store.close()
        await redis.aclose()

    await run_worker(
        "catalog",
        settings,
        install,
        platform=platform,
        extra_topics=[platform.topic(t) for t in TOPICS],
        on_start=store.connect,
        on_stop=stop,
    )


async def relay() -> None:
    """Publish the committed outbox documents (every catalog event) to Kafka."""
    platform, settings = PlatformSettings().require("mongo_uri", "kafka_bootstrap"), CatalogSettings()
    outbox_relay = Relay(
        MongoStore(
            platform.mongo_uri,
            settings.database,
            settings.outbox_collection,
            lease=settings.relay_lease_seconds,
        ),
        lambda: relay_publisher(platform.kafka_bootstrap, "culture-catalog-relay"),
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_seconds,
        report=lambda line: log.info("catalog %s", line),
    )

    async def start() -> None:
        await try_ensure_topics(
            platform.kafka_bootstrap,
            [platform.topic(t) for t in TOPICS],
            settings.topic_partitions,
            role="catalog relay",
        )

    await run_grpc_service("catalog relay", on_start=start, background=[outbox_relay.run])


async def api_write() -> None:
    """CatalogService commands over gRPC: works, reviews, profile updates."""
    platform, settings = PlatformSettings().require("mongo_uri", "redis_url"), CatalogSettings()
    store = _store(platform, settings)
    redis, cache = _cache(platform, settings)

    async def stop() -> None:
        store.close()
        await redis.aclose()

    await run_grpc_service(
        "catalog api-write",
        [(_SERVICE, CatalogWriter(store, cache), catalog_pb2_grpc.add_CatalogServiceServicer_to_server)],
        on_start=store.connect,
        on_stop=stop,
    )


async def api_read() -> None:
    """CatalogService queries over gRPC; works read through the Redis cache."""
    platform, settings = PlatformSettings().require("mongo_uri", "redis_url"), CatalogSettings()
    store = _store(platform, settings)
    redis, cache = _cache(platform, settings)

    async def stop() -> None:
        store.close()
        await redis.aclose()

    await run_grpc_service(
        "catalog api-read",
        [
            (
                _SERVICE,
                CatalogReader(store, cache if settings.cache_enabled else None),
                catalog_pb2_grpc.add_CatalogServiceServicer_to_server,
            )
        ],
        on_start=store.connect,
        on_stop=stop,
    )


ROLES = {"api-write": api_write, "api-read": api_read, "worker": worker, "relay": relay}
