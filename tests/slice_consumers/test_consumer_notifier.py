"""The notifier on the real stack: steps recorded per job in Redis, pushed over pub/sub, served by
GetJobStatus/WatchJob; and the whole registration flow (catalog, mailer, notifier) with a refused mail."""

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

from culture.events.v1 import (
    catalog_events_pb2,
    feed_events_pb2,
    graph_events_pb2,
    identity_events_pb2,
    mailer_events_pb2,
)
from culture.notifier.v1 import notifier_pb2, notifier_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.testing import wait_until
from culture_notifier import jobs, push, store
from culture_notifier.worker import STEP_EVENTS
from culture_runtime.settings import PlatformSettings
from culture_stack.ports import HOST
from culture_stack.server import Context

REDIS_URL = PlatformSettings().redis_url


@pytest.mark.unit
def test_job_state_and_transitions() -> None:
    assert jobs.job_state(["succeeded", "pending", "pending"]) == "running"
    assert jobs.job_state(["succeeded"] * 3) == "succeeded"
    assert jobs.job_state(["succeeded", "failed", "pending"]) == "running"
    assert jobs.job_state(["succeeded", "failed", "succeeded"]) == "failed"
    assert jobs.job_state([]) == "running"
    assert jobs.job_state(["succeeded", "compensated", "succeeded"]) == "failed"
    assert "succeeded" not in jobs.ALLOWED_FROM["failed"]  # a late failure never undoes a success
    snap = jobs.snapshot({"job_id": "j", "user_id": "u", "steps": "account,profile", "version": "2",
                          "step:account:state": "succeeded", "create_time": "2026-01-01T00:00:00.000Z",
                          "update_time": "2026-01-01T00:00:01.000Z"}, step="account")
    assert (snap["step"], snap["state"], snap["job_state"], snap["version"]) == ("account", "succeeded",
                                                                                 "running", 2)
    assert [s["state"] for s in snap["steps"]] == ["succeeded", "pending"]
    job = jobs.to_proto(snap)
    assert job.state == notifier_pb2.JOB_STATE_RUNNING
    assert job.steps[1].state == notifier_pb2.STEP_STATE_PENDING


class Collector:
    """`push.subscribe` running in the background, collecting what it yields."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.updates: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for update in push.subscribe(REDIS_URL, self.user_id):
            self.updates.append(update)

    async def subscribed(self) -> None:
        client = aioredis.from_url(REDIS_URL)
        try:
            async def listening() -> bool:
                counts = await client.pubsub_numsub(store.user_channel(self.user_id))
                return bool(counts and counts[0][1] > 0)

            await wait_until(listening, 60.0, "push.subscribe to listen", interval=0.1)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


@pytest.mark.integration
async def test_steps_are_recorded_pushed_and_served(
        consumer_servers: Context, unique: str, roles: Callable[..., Role]) -> None:
    group = f"notifier-{unique}"
    await start_at_end(group, [ns(t) for t in STEP_EVENTS])
    worker = roles("notifier", "worker", {"CULTURE_NOTIFIER_CONSUMER_GROUP": group})
    api = roles("notifier", "api-read")
    await worker.serving()
    await api.serving()
    event = user_registered(unique)
    job_id, user_id = f"job-{unique}", event.user_id
    pushed = Collector(user_id)
    await pushed.subscribed()
    channel = grpc.aio.insecure_channel(f"{HOST}:{api.port}")
    stub = notifier_pb2_grpc.NotifierServiceStub(channel)
    watched: list[notifier_pb2.Job] = []

    async def watch() -> None:  # started before the job exists: it waits for it
        async for reply in stub.WatchJob(notifier_pb2.WatchJobRequest(job_id=job_id), timeout=60):
            watched.append(reply.job)

    watching = asyncio.create_task(watch())
    try:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetJobStatus(notifier_pb2.GetJobStatusRequest(job_id=job_id), timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

        registered = await publish_event(event, job_id=job_id)
        await wait_until(lambda: pushed.updates, 60.0, "the first push", interval=0.1)
        await publish_event(event, job_id=job_id, event_id=registered.id)  # a duplicate: no change
        await publish_event(catalog_events_pb2.ProfileCreated(user_id=user_id, display_name="x",
                                                              create_time=_now()), job_id=job_id)
        await wait_until(lambda: len(pushed.updates) >= 2, 60.0, "the profile push", interval=0.1)
        await publish_event(mailer_events_pb2.WelcomeMailSent(user_id=user_id, email=event.email,
                                                              message_id="<m@x>", send_time=_now()),
                            job_id=job_id)
        await wait_until(lambda: len(pushed.updates) >= 3, 60.0, "the mail push", interval=0.1)
        await publish_event(graph_events_pb2.UserNodeCreated(user_id=user_id, create_time=_now()),
                            job_id=job_id)
        await wait_until(lambda: len(pushed.updates) >= 4, 60.0, "the graph push", interval=0.1)
        await publish_event(feed_events_pb2.FeedCreated(user_id=user_id, create_time=_now()), job_id=job_id)
        await wait_until(lambda: pushed.updates[-1]["job_state"] == "succeeded", 60.0, "the job to succeed",
                         interval=0.1)
        await asyncio.wait_for(watching, 30)  # WatchJob ends once the job is terminal
    finally:
        await pushed.stop()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await watching

    updates = pushed.updates
    assert [(u["step"], u["state"]) for u in updates] == [
        ("account", "succeeded"), ("profile", "succeeded"), ("welcome-mail", "succeeded"),
        ("graph", "succeeded"), ("feed", "succeeded")]
    assert [u["version"] for u in updates] == [1, 2, 3, 4, 5]
    assert all(u["job_id"] == job_id and u["user_id"] == user_id for u in updates)
    assert [u["job_state"] for u in updates] == ["running"] * 4 + ["succeeded"]
    assert [s["name"] for s in updates[0]["steps"]] == ["account", "profile", "welcome-mail", "graph", "feed"]
    assert [s["state"] for s in updates[0]["steps"]] == ["succeeded"] + ["pending"] * 4

    reply = await stub.GetJobStatus(notifier_pb2.GetJobStatusRequest(job_id=job_id), timeout=10)
    assert reply.job.state == notifier_pb2.JOB_STATE_SUCCEEDED
    assert [(s.name, s.state) for s in reply.job.steps] == [
        (name, notifier_pb2.STEP_STATE_SUCCEEDED) for name in jobs.REGISTRATION_STEPS]
    assert watched and watched[-1].state == notifier_pb2.JOB_STATE_SUCCEEDED
    await channel.close()
    assert (await push.job_status(REDIS_URL, job_id))["version"] == 5
    ttl = await aioredis.from_url(REDIS_URL).ttl(store.job_key(job_id))
    assert 0 < ttl <= 7 * 86400


@pytest.mark.integration
async def test_a_refused_mail_fails_its_step_and_nothing_else(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    """The registration flow with catalog, mailer and notifier: the SMTP server refuses one user's
    mail. That job's welcome-mail step fails with the reason; its profile is still created; another
    user registering at the same time is not affected."""
    registered = topic_of(identity_events_pb2.UserRegistered)
    groups = {s: f"{s}-{unique}" for s in ("catalog", "mailer", "notifier")}
    await start_at_end(groups["catalog"], [ns(registered)])
    await start_at_end(groups["mailer"], [ns(registered)])
    await start_at_end(groups["notifier"], [ns(t) for t in STEP_EVENTS])
    poison = await watch([f"{groups['mailer']}.poison"])
    catalog_env = {"CULTURE_CATALOG_CONSUMER_GROUP": groups["catalog"],
                   "CULTURE_CATALOG_DATABASE": f"catalog_{unique}"}
    started = [
        roles("catalog", "worker", catalog_env), roles("catalog", "relay", catalog_env),
        roles("mailer", "worker", {"CULTURE_MAILER_CONSUMER_GROUP": groups["mailer"],
                                   "CULTURE_MAILER_RETRY_MAX": "1",
                                   "CULTURE_MAILER_RETRY_INITIAL_SECONDS": "0.1"}),
        roles("notifier", "worker", {"CULTURE_NOTIFIER_CONSUMER_GROUP": groups["notifier"]}),
    ]
    for role in started:
        await role.serving()

    refused = user_registered(unique, email=f"refuse-{unique}@example.org")
    fine = user_registered(unique)
    await publish_event(refused, job_id=f"job-{unique}-refused")
    await publish_event(fine, job_id=f"job-{unique}-fine")
    for user, job in ((refused, "refused"), (fine, "fine")):  # graph's and feed's steps (not run here)
        await publish_event(graph_events_pb2.UserNodeCreated(user_id=user.user_id, create_time=_now()),
                            job_id=f"job-{unique}-{job}")
        await publish_event(feed_events_pb2.FeedCreated(user_id=user.user_id, create_time=_now()),
                            job_id=f"job-{unique}-{job}")

    async def finished(job_id: str) -> dict[str, Any] | None:
        snap = await push.job_status(REDIS_URL, job_id)
        return snap if snap and jobs.is_terminal(snap["job_state"]) else None

    failed = await wait_until(lambda: finished(f"job-{unique}-refused"), 90, "the refused job to finish",
                              interval=0.1)
    ok = await wait_until(lambda: finished(f"job-{unique}-fine"), 90, "the other job to finish", interval=0.1)
    steps = {s["name"]: s for s in failed["steps"]}
    assert failed["job_state"] == "failed"
    assert steps["account"]["state"] == "succeeded" and steps["profile"]["state"] == "succeeded"
    assert steps["welcome-mail"]["state"] == "failed" and "550" in steps["welcome-mail"]["message"]
    assert ok["job_state"] == "succeeded"
    # the poison copy and the failure event are published side by side: the watch may see it a moment later
    await wait_until(lambda: poison.on(f"{groups['mailer']}.poison", refused.user_id), 30,
                     "the refused mail in the mailer's poison topic", interval=0.1)

    mongo = AsyncIOMotorClient(PlatformSettings().mongo_uri)
    await mongo.drop_database(f"catalog_{unique}")
    mongo.close()
