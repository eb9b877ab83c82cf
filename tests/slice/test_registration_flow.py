"""The registration slice end to end: gateway -> identity -> outbox -> relay -> Kafka -> catalog
(profile in MongoDB), mailer (mail in the SMTP sink), notifier (job status, SSE push).

Kafka outages are simulated for the identity relay only, through the run's KafkaProxy (Kafka is
shared by everyone and stays up): see culture_events.testing.kafka_proxy for why a plain TCP
proxy would not do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import motor.motor_asyncio
import pytest
import websockets

from culture.events.v1 import identity_events_pb2
from culture_contracts.topics import topic_of
from culture_events.backends.kafka import KafkaPublisher
from culture_events.message import Message
from culture_events.testing import wait_until
from culture_stack.servers.smtp import deliveries_for

from .conftest import SliceRun, new_account

pytestmark = pytest.mark.integration

USER_REGISTERED = topic_of(identity_events_pb2.UserRegistered)
STEPS = ("account", "profile", "welcome-mail", "graph", "feed")


async def _profiles(run: SliceRun, user_id: str) -> int:
    client = motor.motor_asyncio.AsyncIOMotorClient(run.platform.mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        return await client[run.catalog_db]["profiles"].count_documents({"_id": user_id})
    finally:
        client.close()


def _deliveries(run: SliceRun, email: str) -> int:
    return len(deliveries_for(run.ctx, email))


async def _pending_outbox(run: SliceRun, user_id: str) -> list[dict[str, Any]]:
    conn = await run.db()
    try:
        rows = await conn.fetch("SELECT message_id, metadata::text AS metadata, payload FROM identity_outbox "
                                "WHERE partition_key = $1 ORDER BY id", user_id)
    finally:
        await conn.close()
    return [{"id": r["message_id"], "metadata": json.loads(r["metadata"]), "payload": bytes(r["payload"])}
            for r in rows]


async def _consumers_caught_up(run: SliceRun, services: tuple[str, ...]) -> bool:
    """Whether each service's consumer group has committed up to the end of identity.user-registered."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(bootstrap_servers=run.platform.kafka_bootstrap)
    await probe.start()
    try:
        await probe.topics()
        partitions = sorted(probe.partitions_for_topic(USER_REGISTERED) or ())
        tps = [TopicPartition(USER_REGISTERED, p) for p in partitions]
        ends = await probe.end_offsets(tps)
    finally:
        await probe.stop()
    for service in services:
        group = AIOKafkaConsumer(bootstrap_servers=run.platform.kafka_bootstrap, group_id=run.groups[service],
                                 enable_auto_commit=False)
        await group.start()
        try:
            for tp in tps:
                if (await group.committed(tp) or 0) < ends[tp]:
                    return False
        finally:
            await group.stop()
    return True


async def _register(http: httpx.AsyncClient, account: dict[str, str], job_id: str | None = None) -> dict:
    headers = {"x-correlation-id": job_id} if job_id else {}
    reply = await http.post("/api/register", json=account, headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_profile_and_welcome_mail_follow_registration(slice_run: SliceRun, http: httpx.AsyncClient,
                                                            unique: str) -> None:
    slice_run.require("catalog", "mailer")
    account = new_account(unique)
    user_id = (await _register(http, account))["user"]["user_id"]
    await wait_until(lambda: _profiles(slice_run, user_id), 60, "the profile in MongoDB", interval=0.2)
    await wait_until(lambda: asyncio.to_thread(_deliveries, slice_run, account["email"]), 60,
                     "the welcome mail in the SMTP sink", interval=0.2)
    await wait_until(lambda: _consumers_caught_up(slice_run, ("catalog", "mailer")), 60,
                     "catalog and mailer to commit past the event", interval=0.2)
    assert await _profiles(slice_run, user_id) == 1
    assert _deliveries(slice_run, account["email"]) == 1


async def _sse_events(client: httpx.AsyncClient, url: str, ready: asyncio.Event,
                      out: list[tuple[str, dict[str, Any]]]) -> None:
    """Collect (event, data) from an SSE stream until `done`; set `ready` on the first event."""
    async with client.stream("GET", url, timeout=httpx.Timeout(10, read=120)) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        event, data = "message", ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                out.append((event, json.loads(data)))
                if event == "ready":
                    ready.set()
                if event == "done":
                    return
                event, data = "message", ""


async def test_status_and_sse_show_every_step_in_order(slice_run: SliceRun, http: httpx.AsyncClient,
                                                       unique: str) -> None:
    slice_run.require("catalog", "mailer", "notifier", "graph", "feed")
    account = new_account(unique)
    job_id = uuid.uuid4().hex  # chosen up front, so the SSE client connects BEFORE the register call
    events: list[tuple[str, dict[str, Any]]] = []
    ready = asyncio.Event()
    async with httpx.AsyncClient(base_url=slice_run.gateway) as sse_client:
        listener = asyncio.ensure_future(_sse_events(sse_client, f"/events?job_id={job_id}", ready, events))
        await asyncio.wait_for(ready.wait(), 15)
        registered = await _register(http, account, job_id)
        assert registered["job_id"] == job_id
        user_id = registered["user"]["user_id"]
        await wait_until(lambda: _profiles(slice_run, user_id), 60, "the profile in MongoDB", interval=0.2)
        await wait_until(lambda: asyncio.to_thread(_deliveries, slice_run, account["email"]), 60,
                         "the welcome mail", interval=0.2)

        # long polling: wait for changes until every step is done
        job: dict[str, Any] = {}
        after: str | None = None
        async with asyncio.timeout(90):
            while job.get("state") != "succeeded":
                params = {"wait": "10", **({"after": after} if after else {})}
                reply = await http.get(f"/status/{job_id}", params=params)
                assert reply.status_code in (200, 404), reply.text
                if reply.status_code == 200:
                    job = reply.json()
                    after = job["updated_at"]
        assert {s["name"]: s["state"] for s in job["steps"]} == dict.fromkeys(STEPS, "succeeded")

        await asyncio.wait_for(listener, 60)
    steps = [data for event, data in events if event == "step"]
    done_order = [s["step"] for s in steps if s["state"] == "succeeded"]
    assert sorted(done_order) == sorted(STEPS), events  # each step reported done exactly once
    # no "account first": the notifier reads each step's topic with its own consumer, so a feed-created
    # can be recorded before the user-registered that caused it (seen in warm CI on a busy machine)
    times = [s["updated_at"] for s in steps if s["state"] == "succeeded"]
    assert times == sorted(times), events  # in the order they happened
    assert events[-1][0] == "done" and events[-1][1]["job_state"] == "succeeded"


async def test_logged_in_user_can_open_the_push_streams(slice_run: SliceRun, http: httpx.AsyncClient,
                                                        unique: str) -> None:
    slice_run.require("notifier")
    account = new_account(unique)
    await _register(http, account)
    token = (await http.post("/api/login", json={"login": unique, "password": account["password"]})).json()
    events: list[tuple[str, dict[str, Any]]] = []
    ready = asyncio.Event()
    async with httpx.AsyncClient(base_url=slice_run.gateway) as sse_client:
        listener = asyncio.ensure_future(
            _sse_events(sse_client, f"/events?access_token={token['access_token']}", ready, events))
        try:
            await asyncio.wait_for(ready.wait(), 15)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
    assert events[0][1]["subscribed"].startswith("user ")


async def test_registration_survives_kafka_being_down(slice_run: SliceRun, http: httpx.AsyncClient,
                                                      unique: str) -> None:
    slice_run.require("catalog", "mailer")
    account = new_account(unique)
    await slice_run.proxy.close()  # Kafka unreachable for the identity relay
    try:
        user_id = (await _register(http, account))["user"]["user_id"]  # still answers at once
        assert len(await _pending_outbox(slice_run, user_id)) == 1
        # while Kafka is away the event stays in the outbox and nothing downstream happens
        for _ in range(10):
            assert len(await _pending_outbox(slice_run, user_id)) == 1
            assert await _profiles(slice_run, user_id) == 0
            await asyncio.sleep(0.3)
    finally:
        await slice_run.proxy.open()
    await wait_until(lambda: _profiles(slice_run, user_id), 90, "the profile after Kafka came back",
                     interval=0.2)
    await wait_until(lambda: asyncio.to_thread(_deliveries, slice_run, account["email"]), 60,
                     "the welcome mail after Kafka came back", interval=0.2)
    await wait_until(lambda: _outbox_empty(slice_run, user_id), 60, "the outbox row to be relayed",
                     interval=0.2)
    await wait_until(lambda: _consumers_caught_up(slice_run, ("catalog", "mailer")), 60,
                     "catalog and mailer to commit past every delivery", interval=0.2)
    assert await _profiles(slice_run, user_id) == 1
    assert _deliveries(slice_run, account["email"]) == 1


async def _outbox_empty(run: SliceRun, user_id: str) -> bool:
    return not await _pending_outbox(run, user_id)


async def test_the_same_event_delivered_twice_gives_one_profile_and_one_mail(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    slice_run.require("catalog", "mailer")
    account = new_account(unique)
    await slice_run.proxy.close()  # hold the relay back so we can copy the event first
    try:
        user_id = (await _register(http, account))["user"]["user_id"]
        (row,) = await _pending_outbox(slice_run, user_id)
        # the copy a relay would send if it died after Kafka accepted but before deleting the row
        publisher = KafkaPublisher(slice_run.platform.kafka_bootstrap, client_id="slice-test-duplicate")
        try:
            await publisher.publish(USER_REGISTERED, Message(row["payload"], row["metadata"], id=row["id"]))
        finally:
            await publisher.close()
        await wait_until(lambda: _profiles(slice_run, user_id), 60, "the profile from the copy", interval=0.2)
    finally:
        await slice_run.proxy.open()
    await wait_until(lambda: _outbox_empty(slice_run, user_id), 90, "the relay to send the original",
                     interval=0.2)
    await wait_until(lambda: _consumers_caught_up(slice_run, ("catalog", "mailer")), 60,
                     "catalog and mailer to consume both deliveries", interval=0.2)
    await wait_until(lambda: asyncio.to_thread(_deliveries, slice_run, account["email"]), 30,
                     "the welcome mail", interval=0.2)
    assert await _profiles(slice_run, user_id) == 1
    assert _deliveries(slice_run, account["email"]) == 1


async def test_websocket_pushes_the_job_steps(slice_run: SliceRun, http: httpx.AsyncClient,
                                              unique: str) -> None:
    slice_run.require("catalog", "mailer", "notifier", "graph", "feed")

    job_id = uuid.uuid4().hex
    url = slice_run.gateway.replace("http://", "ws://") + f"/ws?job_id={job_id}"
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url, open_timeout=10) as ws:
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert messages[0]["type"] == "ready"
        await _register(http, new_account(unique), job_id)
        async with asyncio.timeout(90):
            while messages[-1]["type"] != "done":
                messages.append(json.loads(await ws.recv()))
    done = [m["step"] for m in messages if m["type"] == "step" and m["state"] == "succeeded"]
    assert sorted(done) == sorted(STEPS), messages
    assert messages[-1]["job_state"] == "succeeded"
