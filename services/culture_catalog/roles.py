"""The catalog roles `culture serve catalog --role ...` runs (see the package docstring)."""

from __future__ import annotations

import logging

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture.events.v1 import catalog_events_pb2, identity_events_pb2
from culture_catalog.profiles import ProfileStore
from culture_catalog.service import CatalogServicer
from culture_catalog.settings import CatalogSettings
from culture_catalog.worker import ProfileCreator
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
TOPICS = (topic_of(catalog_events_pb2.ProfileCreated),)


def _store(platform: PlatformSettings, settings: CatalogSettings) -> ProfileStore:
    return ProfileStore(platform.mongo_uri, settings.database, settings.outbox_collection,
                        created_topic=platform.topic(topic_of(catalog_events_pb2.ProfileCreated)))


async def worker() -> None:
    """Consume identity.user-registered; create profiles (ProfileCreated via the outbox)."""
    platform, settings = PlatformSettings().require("mongo_uri", "kafka_bootstrap"), CatalogSettings()
    store = _store(platform, settings)

    def install(router: Router, wiring: Wiring) -> None:
        source = platform.topic(topic_of(identity_events_pb2.UserRegistered))
        router.add_consumer_handler("catalog.profile", source, wiring.subscriber, ProfileCreator(store))

    async def stop() -> None:
        store.close()

    await run_worker("catalog", settings, install, platform=platform,
                     extra_topics=[platform.topic(t) for t in TOPICS],
                     on_start=store.connect, on_stop=stop)


async def relay() -> None:
    """Publish the committed outbox documents (ProfileCreated) to Kafka."""
    platform, settings = PlatformSettings().require("mongo_uri", "kafka_bootstrap"), CatalogSettings()
    outbox_relay = Relay(
        MongoStore(platform.mongo_uri, settings.database, settings.outbox_collection,
                   lease=settings.relay_lease_seconds),
        lambda: relay_publisher(platform.kafka_bootstrap, "culture-catalog-relay"),
        batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_seconds,
        report=lambda line: log.info("catalog %s", line))

    async def start() -> None:
        await try_ensure_topics(platform.kafka_bootstrap, [platform.topic(t) for t in TOPICS],
                                settings.topic_partitions, role="catalog relay")

    await run_grpc_service("catalog relay", on_start=start, background=[outbox_relay.run])


async def api_read() -> None:
    """CatalogService (GetProfile) over gRPC."""
    platform, settings = PlatformSettings().require("mongo_uri"), CatalogSettings()
    store = _store(platform, settings)

    async def stop() -> None:
        store.close()

    await run_grpc_service(
        "catalog api-read",
        [(catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"], CatalogServicer(store),
          catalog_pb2_grpc.add_CatalogServiceServicer_to_server)],
        on_start=store.connect, on_stop=stop)


ROLES = {"worker": worker, "relay": relay, "api-read": api_read}
