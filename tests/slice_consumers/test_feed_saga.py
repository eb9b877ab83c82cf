"""The FeedCreationFailed saga on the real stack, every role a `culture serve` subprocess: the feed's
admission policy (a product setting) refuses a user's feed; the catalog compensates (the profile is
`incomplete` with the reason, ProfileMarkedIncomplete); the notifier's job shows the feed step failed
and the profile step compensated, and its push channel (what the gateway's SSE relays) saw both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from _consumers_support import Role, TopicWatch, ns, publish_event, start_at_end, user_registered
from google.protobuf import timestamp_pb2
from motor.motor_asyncio import AsyncIOMotorClient

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture.events.v1 import (
    catalog_events_pb2,
    feed_events_pb2,
    graph_events_pb2,
    identity_events_pb2,
    mailer_events_pb2,
)
from culture_contracts.topics import topic_of
from culture_events.testing import wait_until
from culture_notifier import jobs, push, store
from culture_notifier.worker import STEP_EVENTS
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

REGISTERED = topic_of(identity_events_pb2.UserRegistered)
FAILED = topic_of(feed_events_pb2.FeedCreationFailed)
INCOMPLETE = topic_of(catalog_events_pb2.ProfileMarkedIncomplete)


@pytest.fixture(scope="session")
def saga_servers(consumer_servers: Context) -> Context:
    stack.up(consumer_servers, registry.select(["cassandra"]))
    return consumer_servers


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


async def _pushes(redis_url: str, user_id: str, into: list[dict[str, Any]]) -> None:
    async for update in push.subscribe(redis_url, user_id):
        into.append(update)


async def test_a_refused_feed_marks_the_profile_incomplete_and_the_job_shows_it(
        saga_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    redis_url = PlatformSettings().redis_url or ""
    groups = {s: f"{s}-{unique}" for s in ("feed", "catalog", "notifier")}
    await start_at_end(groups["feed"], [ns(REGISTERED)])
    await start_at_end(groups["catalog"], [ns(REGISTERED), ns(FAILED)])
    await start_at_end(groups["notifier"], [ns(t) for t in STEP_EVENTS])
    seen = await watch([ns(FAILED), ns(INCOMPLETE)])
    keyspace, database = f"feed_{unique}", f"catalog_{unique}"
    catalog_env = {"CULTURE_CATALOG_CONSUMER_GROUP": groups["catalog"], "CULTURE_CATALOG_DATABASE": database,
                   "CULTURE_CATALOG_RELAY_POLL_SECONDS": "0.2"}
    started = [
        roles("feed", "worker", {"CULTURE_FEED_CONSUMER_GROUP": groups["feed"],
                                 "CULTURE_FEED_KEYSPACE": keyspace,
                                 "CULTURE_FEED_GRAPH_READ": "127.0.0.1:1",  # no review in this test
                                 "CULTURE_FEED_REFUSED_USERNAMES": f"svc-{unique}-.*"}),
        roles("catalog", "worker", catalog_env), roles("catalog", "relay", catalog_env),
        roles("catalog", "api-read", catalog_env),
        roles("notifier", "worker", {"CULTURE_NOTIFIER_CONSUMER_GROUP": groups["notifier"]}),
    ]
    for role in started:
        await role.serving(within=120)

    user = user_registered(unique)
    user.username = f"svc-{unique}-backup"
    job_id = f"job-{unique}"
    updates: list[dict[str, Any]] = []
    pushing = asyncio.create_task(_pushes(redis_url, user.user_id, updates))
    client = aioredis.from_url(redis_url)
    try:
        async def listening() -> bool:
            counts = await client.pubsub_numsub(store.user_channel(user.user_id))
            return bool(counts and counts[0][1] > 0)

        await wait_until(listening, 60, "the push subscription", interval=0.1)
        await publish_event(user, job_id=job_id)
        # the mailer and the graph are not part of this test: their steps are reported by hand
        await publish_event(mailer_events_pb2.WelcomeMailSent(user_id=user.user_id, email=user.email,
                                                              message_id="<m@x>", send_time=_now()),
                            job_id=job_id)
        await publish_event(graph_events_pb2.UserNodeCreated(user_id=user.user_id, create_time=_now()),
                            job_id=job_id)

        async def finished() -> dict[str, Any] | None:
            snap = await push.job_status(redis_url, job_id)
            steps = {s["name"]: s["state"] for s in (snap or {}).get("steps", [])}
            done = snap and jobs.is_terminal(snap["job_state"]) and steps.get("profile") == "compensated"
            return snap if done else None

        job = await wait_until(finished, 120, "the job to show the failure and the compensation",
                               interval=0.2)
        steps = {s["name"]: s for s in job["steps"]}
        assert [s["name"] for s in job["steps"]] == list(jobs.REGISTRATION_STEPS)
        assert job["job_state"] == "failed"
        assert steps["feed"]["state"] == "failed" and "admission policy" in steps["feed"]["message"]
        assert steps["profile"]["state"] == "compensated"
        assert steps["account"]["state"] == steps["welcome-mail"]["state"] == steps["graph"]["state"] \
            == "succeeded"
        await wait_until(lambda: any(u["step"] == "profile" and u["state"] == "compensated" for u in updates),
                         30, "the compensation push", interval=0.1)
        pushed = [(u["step"], u["state"]) for u in updates]
        assert ("feed", "failed") in pushed and ("profile", "compensated") in pushed, pushed
        assert seen.on(ns(FAILED), user.user_id) and seen.on(ns(INCOMPLETE), user.user_id)

        async with grpc.aio.insecure_channel(f"{HOST}:{started[3].port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            reply = await stub.GetProfile(catalog_pb2.GetProfileRequest(user_id=user.user_id), timeout=10)
        assert reply.profile.state == catalog_pb2.PROFILE_STATE_INCOMPLETE
        assert "admission policy" in reply.profile.incomplete_reason
    finally:
        pushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pushing
        await client.aclose()
        mongo = AsyncIOMotorClient(PlatformSettings().mongo_uri)
        await mongo.drop_database(database)
        mongo.close()
        await asyncio.to_thread(_drop_keyspace, keyspace)


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    plat = PlatformSettings()
    cluster = Cluster((plat.cassandra_contact_points or "").split(","), port=plat.cassandra_port,
                      protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()
