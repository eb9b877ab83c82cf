"""The catalog worker and relay on the real stack: one profile and one ProfileCreated per user, even
when UserRegistered is delivered twice; GetProfile serves it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import grpc
import pytest
from _consumers_support import (
    Role,
    TopicWatch,
    consumed_up_to_now,
    ns,
    publish_event,
    start_at_end,
    user_registered,
)
from motor.motor_asyncio import AsyncIOMotorClient

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture.events.v1 import catalog_events_pb2, identity_events_pb2
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.testing import wait_until
from culture_runtime.settings import PlatformSettings
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

REGISTERED = topic_of(identity_events_pb2.UserRegistered)
CREATED = topic_of(catalog_events_pb2.ProfileCreated)


async def test_the_same_event_twice_makes_one_profile_and_one_event(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    group, database = f"catalog-{unique}", f"catalog_{unique}"
    env = {"CULTURE_CATALOG_CONSUMER_GROUP": group, "CULTURE_CATALOG_DATABASE": database}
    seen = await watch([ns(CREATED)])
    await start_at_end(group, [ns(REGISTERED)])
    worker, relay, api = (roles("catalog", "worker", env), roles("catalog", "relay", env),
                          roles("catalog", "api-read", env))
    for role in (worker, relay, api):
        await role.serving()

    event = user_registered(unique)
    first = await publish_event(event, job_id=f"job-{unique}")
    await publish_event(event, job_id=f"job-{unique}", event_id=first.id)  # redelivered
    await publish_event(event, job_id=f"job-{unique}")  # even a new event id for the same user
    created = await wait_until(lambda: seen.on(ns(CREATED), event.user_id), 60.0, "ProfileCreated",
                               interval=0.1)
    await consumed_up_to_now(group, ns(REGISTERED))

    client = AsyncIOMotorClient(PlatformSettings().mongo_uri, tz_aware=True)
    try:
        db = client[database]
        assert await db.profiles.count_documents({"_id": event.user_id}) == 1
        await wait_until(lambda: _outbox_empty(db), 60.0, "the outbox to drain", interval=0.1)
        assert len(seen.on(ns(CREATED), event.user_id)) == 1
        profile_event = decode(created[0], catalog_events_pb2.ProfileCreated)
        assert profile_event.display_name == event.display_name
        assert created[0].metadata["correlation_id"] == f"job-{unique}"  # the job id travels on
        assert created[0].metadata["causation_id"] == first.id

        async with grpc.aio.insecure_channel(f"{HOST}:{api.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            reply = await stub.GetProfile(catalog_pb2.GetProfileRequest(user_id=event.user_id), timeout=10)
            assert reply.profile.display_name == event.display_name
            assert reply.profile.state == catalog_pb2.PROFILE_STATE_ACTIVE
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetProfile(catalog_pb2.GetProfileRequest(user_id=f"nobody-{unique}"), timeout=10)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await client.drop_database(database)
        client.close()


async def _outbox_empty(db: object) -> bool:
    return await db["catalog_outbox"].count_documents({}) == 0  # type: ignore[index]
