"""A role's health follows its readiness after start (a worker's: its router), so probes see a
process that stopped consuming and the kubelet restarts it."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from culture_events.testing import wait_until
from culture_grpc.server import GrpcServerSettings
from culture_runtime.service import run_grpc_service
from culture_stack.dev import free_port

pytestmark = pytest.mark.unit


async def _status(port: int) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def test_health_follows_readiness_after_start() -> None:
    port = free_port()
    consuming = True
    role = asyncio.create_task(run_grpc_service(
        "health-test", settings=GrpcServerSettings(port=port), ready=lambda: consuming,
        ready_check_seconds=0.05))

    async def status_is(want: str) -> bool:
        return await _status(port) == want

    try:
        await wait_until(lambda: status_is("SERVING"), 30, "SERVING after start", interval=0.05)
        consuming = False  # e.g. the router stopped consuming
        await wait_until(lambda: status_is("NOT_SERVING"), 30, "NOT_SERVING while not ready", interval=0.05)
        consuming = True
        await wait_until(lambda: status_is("SERVING"), 30, "SERVING again", interval=0.05)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # the role's own signal handler stops it gracefully
        await asyncio.wait_for(role, 60)


async def test_a_router_is_not_ready_once_one_of_its_subscriptions_ended() -> None:
    from culture_events.backends.memory import MemoryBroker, MemorySubscriber
    from culture_events.message import Message
    from culture_events.router import Router

    broker = MemoryBroker()
    ending = MemorySubscriber(broker, "g1")
    router = Router()

    async def handler(msg: Message) -> list[Message]:
        return []

    router.add_consumer_handler("stays", "t1", MemorySubscriber(broker, "g2"), handler)
    router.add_consumer_handler("ends", "t2", ending, handler)
    assert not router.is_ready()
    task = asyncio.create_task(router.run())
    try:
        await wait_until(router.is_ready, 10, "the router to run", interval=0.01)
        await ending.close()  # one subscription's stream ends; the other still consumes
        await wait_until(lambda: not router.is_ready(), 10, "not ready with a handler gone", interval=0.01)
    finally:
        await router.close()
        await task
