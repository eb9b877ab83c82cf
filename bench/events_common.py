"""Shared bits of the benchmarks (bench/*.py): servers, topics, a role as a subprocess, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from culture_stack import registry, stack
from culture_stack.dev import free_port
from culture_stack.endpoints import with_platform_env
from culture_stack.server import Context, say


def up(*names: str) -> dict[str, dict[str, Any]]:
    """Start only the servers a benchmark needs (idempotent) and return their settings."""
    servers = registry.select(list(names))
    stack.up(Context.default(), servers)
    return {s.name: s.settings() for s in servers}


def bootstrap(settings: dict[str, dict[str, Any]]) -> str:
    kafka = settings["kafka"]
    return kafka.get("bootstrap_servers") or f"{kafka['host']}:{kafka['port']}"


def unique(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create a topic (auto-creation is off on the stack's broker)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, *topics: str) -> None:
    """Remove the benchmark's topics (best effort: the broker is shared)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        await admin.start()
        await admin.delete_topics(list(topics))
    except Exception as exc:  # noqa: BLE001 - cleanup only
        say(f"  (could not delete topics {topics}: {exc})")
    finally:
        await admin.close()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest-rank."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def load_note() -> str:
    """One line on how busy the machine is (the numbers depend on it)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.asynccontextmanager
async def serve_process(service: str, role: str, env: dict[str, str], log: Path, *, port_env: str,
                        ready: Callable[[int], Awaitable[bool]], within: float = 60.0) -> AsyncIterator[int]:
    """`culture serve SERVICE --role ROLE` as a subprocess with the local stack's endpoints (where the
    environment does not name others), listening on a free port passed as `port_env`; yields the port
    once `ready(port)` says so (`within` seconds at most), and stops the process afterwards."""
    port = free_port()
    culture = Path(sys.executable).with_name("culture")
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it takes microseconds; it runs on its own
            [str(culture), "serve", service, "--role", role],
            env={**with_platform_env(dict(os.environ)), **env, port_env: str(port)},
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + within
        while not await ready(port):
            if proc.poll() is not None:
                raise SystemExit(f"{service} {role} exited; see {log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{service} {role} did not start within {within:.0f}s; see {log}")
            await asyncio.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def grpc_serving(port: int) -> bool:
    """Whether the gRPC server on `port` answers its health check with SERVING."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with contextlib.suppress(grpc.aio.AioRpcError):
            check = health_pb2_grpc.HealthStub(channel).Check
            reply = await check(health_pb2.HealthCheckRequest(), timeout=1)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    return False


@contextlib.asynccontextmanager
async def serve_role(service: str, role: str, env: dict[str, str], log: Path,
                     within: float = 60.0) -> AsyncIterator[str]:
    """A gRPC role (`serve_process`); yields its address once its health says SERVING."""
    async with serve_process(service, role, env, log, port_env="CULTURE_GRPC_PORT", ready=grpc_serving,
                             within=within) as port:
        yield f"127.0.0.1:{port}"
