"""Graceful shutdown: on SIGTERM health says NOT_SERVING / 503 first, then the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from culture_stack.dev import Supervisor, free_port

pytestmark = pytest.mark.integration


async def _grpc_health(port: int) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def test_health_goes_not_serving_before_the_processes_exit(slice_servers: object,
                                                                 tmp_path: Path) -> None:
    roles = [("identity", "api-read"), ("gateway", "api")]
    ports = {key: free_port() for key in roles}
    env = {**os.environ, "CULTURE_IDENTITY_DB_SCHEMA": f"shutdown_{uuid.uuid4().hex[:8]}",
           "CULTURE_GRPC_DRAIN_SECONDS": "2", "CULTURE_GATEWAY_DRAIN_SECONDS": "2",
           "CULTURE_GATEWAY_REQUIRED_UPSTREAMS": '["identity-read"]',
           "CULTURE_GATEWAY_HEALTH_INTERVAL_SECONDS": "0.3"}
    supervisor = Supervisor(roles, ports=ports, log_dir=tmp_path, env=env, log_prefix="shutdown")
    await asyncio.to_thread(supervisor.start)
    try:
        gateway, identity = supervisor.child("gateway", "api"), supervisor.child("identity", "api-read")
        url = f"http://127.0.0.1:{gateway.port}/healthz"
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(url)).status_code == 200
            assert gateway.proc is not None and identity.proc is not None
            gateway.proc.send_signal(signal.SIGTERM)
            reply = await http.get(url)
            deadline = time.monotonic() + 5
            while reply.status_code == 200 and time.monotonic() < deadline:
                reply = await http.get(url)
            assert reply.status_code == 503 and reply.json()["status"] == "draining"
            assert gateway.proc.poll() is None  # still answering while it drains
        assert await asyncio.to_thread(gateway.proc.wait, 30) == 0

        assert await _grpc_health(identity.port) == "SERVING"
        identity.proc.send_signal(signal.SIGTERM)
        status, deadline = "SERVING", time.monotonic() + 5
        while status == "SERVING" and time.monotonic() < deadline:
            status = await _grpc_health(identity.port)
        assert status == "NOT_SERVING"
        assert identity.proc.poll() is None
        assert await asyncio.to_thread(identity.proc.wait, 30) == 0
    finally:
        await asyncio.to_thread(supervisor.stop)
        import asyncpg

        from culture_runtime.settings import PlatformSettings

        conn = await asyncpg.connect(PlatformSettings().postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{env["CULTURE_IDENTITY_DB_SCHEMA"]}" CASCADE')
        await conn.close()
