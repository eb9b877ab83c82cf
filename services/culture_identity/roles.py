"""The identity roles `culture serve identity --role ...` runs (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import logging

from culture.events.v1 import identity_events_pb2
from culture.identity.v1 import identity_pb2, identity_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.backends.kafka import relay_publisher
from culture_events.outbox.postgres import PostgresStore
from culture_events.outbox.relay import Relay
from culture_identity.ratelimit import LoginLimiter, RegistrationLimiter
from culture_identity.service import IdentityServicer
from culture_identity.settings import IdentitySettings
from culture_identity.store import IdentityStore
from culture_identity.tokens import TokenSigner, TokenVerifier
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import try_ensure_topics

log = logging.getLogger("culture_identity")

#: the topics identity publishes (created at relay start: auto topic creation is off)
TOPICS = (topic_of(identity_events_pb2.UserRegistered),)


def signer_of(settings: IdentitySettings) -> TokenSigner:
    """The token signer configured by the settings (needs the private key: the api-write role)."""
    private = settings.private_key()
    return TokenSigner(settings.signing_key_id, private, settings.public_keys(private),
                       issuer=settings.issuer, ttl=dt.timedelta(seconds=settings.access_token_ttl_seconds))


def verifier_of(settings: IdentitySettings) -> TokenVerifier:
    """The token verifier configured by the settings: public keys only (the api-read role runs with
    CULTURE_IDENTITY_PUBLIC_KEY and no private key)."""
    return TokenVerifier(settings.public_keys(), issuer=settings.issuer)


async def _api(role: str, writes: bool) -> None:
    platform = PlatformSettings().require("postgres_dsn", *(("redis_url",) if writes else ()))
    settings = IdentitySettings()
    store = IdentityStore(platform.postgres_dsn, settings.db_schema,
                          min_size=settings.pool_min_size, max_size=settings.pool_max_size,
                          registered_topic=platform.topic(topic_of(identity_events_pb2.UserRegistered)))
    limiter = (LoginLimiter(platform.redis_url, max_failures=settings.login_max_failures,
                            window=settings.login_failure_window_seconds, prefix=settings.limits_prefix)
               if writes else None)
    registrations = (RegistrationLimiter(platform.redis_url, per_address=settings.register_max_per_address,
                                         total=settings.register_max_total,
                                         window=settings.register_window_seconds,
                                         prefix=settings.limits_prefix) if writes else None)
    key = platform.client_address_key
    if writes and key is None:
        log.warning("identity: no CULTURE_CLIENT_ADDRESS_KEY: addresses forwarded by the gateway are "
                    "ignored, logins and registrations are limited per calling pod")
    # only the writing role signs; the read role verifies with the public keys alone
    servicer = IdentityServicer(settings, store, signer_of(settings) if writes else verifier_of(settings),
                                limiter, writes=writes,
                                registrations=registrations,
                                client_address_key=key.get_secret_value().encode() if key else None)

    async def start() -> None:
        await store.connect()
        for redis_limiter in (limiter, registrations):
            if redis_limiter is not None:
                await redis_limiter.ping()

    async def stop() -> None:
        await store.close()
        for redis_limiter in (limiter, registrations):
            if redis_limiter is not None:
                await redis_limiter.close()

    await run_grpc_service(
        f"identity {role}",
        [(identity_pb2.DESCRIPTOR.services_by_name["IdentityService"], servicer,
          identity_pb2_grpc.add_IdentityServiceServicer_to_server)],
        on_start=start, on_stop=stop)


async def api_write() -> None:
    """The whole IdentityService: Register, Login, Refresh, and the reads."""
    await _api("api-write", writes=True)


async def api_read() -> None:
    """ValidateToken and GetUser only: the hot read path, scaled apart from the writes."""
    await _api("api-read", writes=False)


async def relay() -> None:
    """Publish committed outbox rows (UserRegistered) to Kafka."""
    platform, settings = PlatformSettings().require("postgres_dsn", "kafka_bootstrap"), IdentitySettings()
    store = IdentityStore(platform.postgres_dsn, settings.db_schema, min_size=1, max_size=1)
    topics = [platform.topic(t) for t in TOPICS]
    outbox_relay = Relay(
        PostgresStore(platform.postgres_dsn, store.outbox, create_schema=False),
        lambda: relay_publisher(platform.kafka_bootstrap, "culture-identity-relay"),
        batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_seconds,
        report=lambda line: log.info("identity %s", line))

    async def start() -> None:
        await store.connect()  # migrations: the relay may start before the API
        await store.close()
        await try_ensure_topics(platform.kafka_bootstrap, topics, settings.topic_partitions,
                                role="identity relay")

    await run_grpc_service("identity relay", on_start=start, background=[outbox_relay.run])


ROLES = {"api-write": api_write, "api-read": api_read, "relay": relay}
