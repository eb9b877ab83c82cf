"""Support of the chat tests (re-exported by conftest.py): the chat's roles, identity (for tokens)
and TWO gateways as `culture serve` processes (culture_stack.dev.Supervisor, as tests/slice runs
them), Redis reached through a TCP proxy the tests own and can cut, users with tokens, and WebSocket
clients that collect the frames they receive.

Isolation: the run's own Cassandra keyspace, Postgres schema, Redis prefix and topic namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from culture_events.testing import wait_until
from culture_events.testing.tcp_proxy import TcpProxy
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.dev import Supervisor, free_port
from culture_stack.server import Context

HOST = "127.0.0.1"
#: presence lapses this fast in the tests (the gateways ping sockets every second, 1 s timeout)
PRESENCE_TTL = 3.0


@dataclasses.dataclass
class ChatRun:
    run_id: str
    keyspace: str
    schema: str
    namespace: str
    redis_proxy: TcpProxy
    backends: Supervisor
    second: Supervisor
    platform: PlatformSettings

    @property
    def gateways(self) -> tuple[str, str]:
        return (f"http://{HOST}:{self.backends.child('gateway', 'api').port}",
                f"http://{HOST}:{self.second.child('gateway', 'api').port}")

    def grpc(self, role: str, service: str = "chat") -> str:
        return f"{HOST}:{self.backends.child(service, role).port}"


@pytest.fixture(scope="session")
def chat_servers(stack_ctx: Context) -> Context:
    stack.up(stack_ctx, registry.select(["postgres", "redis", "kafka", "cassandra"]))
    return stack_ctx


def _drop(platform: PlatformSettings, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster((platform.cassandra_contact_points or "").split(","), port=platform.cassandra_port,
                      protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


@pytest_asyncio.fixture(scope="module")
async def chat_run(chat_servers: Context, tmp_path_factory: pytest.TempPathFactory,
                   issued_names: set[str]) -> AsyncIterator[ChatRun]:
    """identity (api-write, api-read), chat (api-write, api-read, relay), notifier and gateway 1 in one
    Supervisor, gateway 2 in another; chat and both gateways reach Redis through the run's proxy."""
    platform = PlatformSettings()
    run_id = "c" + uuid.uuid4().hex[:10]
    issued_names.add(run_id)
    redis_url = platform.redis_url or ""
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    rhost, _, rport = host_port.rpartition(":")
    proxy = TcpProxy(rhost, int(rport))
    await proxy.open()
    proxied = redis_url.replace(host_port, proxy.address)
    env = {**os.environ,
           "CULTURE_TOPIC_NAMESPACE": run_id,
           "CULTURE_IDENTITY_DB_SCHEMA": f"chat_{run_id}",
           "CULTURE_CHAT_KEYSPACE": f"chat_{run_id}",
           "CULTURE_CHAT_REDIS_PREFIX": f"{run_id}:chat:",
           "CULTURE_CHAT_RELAY_POLL_SECONDS": "0.3",
           "CULTURE_CHAT_OUTBOX_GRACE_SECONDS": "1",
           "CULTURE_CHAT_REQUEST_TIMEOUT_SECONDS": "5",
           "CULTURE_GATEWAY_CHAT_PREFIX": f"{run_id}:chat:",
           "CULTURE_GATEWAY_PRESENCE_TTL_SECONDS": str(PRESENCE_TTL),
           "CULTURE_GATEWAY_WS_PING_INTERVAL_SECONDS": "1",
           "CULTURE_GATEWAY_WS_PING_TIMEOUT_SECONDS": "1",
           "CULTURE_GATEWAY_HEALTH_INTERVAL_SECONDS": "0.5",
           "CULTURE_GATEWAY_RPC_TIMEOUT_SECONDS": "5",
           "CULTURE_NOTIFIER_CONSUMER_GROUP": f"notifier-{run_id}"}
    through_proxy = {"CULTURE_REDIS_URL": proxied}
    roles = [("identity", "api-write"), ("identity", "api-read"), ("chat", "api-write"), ("chat", "api-read"),
             ("chat", "relay"), ("notifier", "worker"), ("notifier", "api-read"), ("gateway", "api")]
    ports = {key: free_port() for key in roles}
    logs = Path(tmp_path_factory.mktemp("chat"))
    backends = Supervisor(roles, ports=ports, log_dir=logs, env=env, log_prefix=run_id, start_timeout=120,
                          role_env={("chat", "api-write"): through_proxy, ("chat", "api-read"): through_proxy,
                                    ("gateway", "api"): through_proxy})
    second_ports = {**ports, ("gateway", "api"): free_port()}
    # the second gateway's upstreams are the first supervisor's roles (child_env reads them from ports)
    second = Supervisor([("gateway", "api")], ports=second_ports, log_dir=logs, env=env,
                        log_prefix=f"{run_id}-gw2", start_timeout=120,
                        role_env={("gateway", "api"): {
                            **through_proxy,
                            "CULTURE_GATEWAY_REQUIRED_UPSTREAMS": '["identity-write","identity-read",'
                                                                  '"chat-write","chat-read"]'}})
    try:
        await asyncio.to_thread(backends.start)
        await asyncio.to_thread(second.start)
        yield ChatRun(run_id, f"chat_{run_id}", f"chat_{run_id}", run_id, proxy, backends, second, platform)
    finally:
        await asyncio.to_thread(second.stop)
        await asyncio.to_thread(backends.stop)
        await proxy.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_drop, platform, f"chat_{run_id}")
        with contextlib.suppress(Exception):
            import asyncpg

            conn = await asyncpg.connect(platform.postgres_dsn)
            await conn.execute(f'DROP SCHEMA IF EXISTS "chat_{run_id}" CASCADE')
            await conn.close()


@dataclasses.dataclass
class User:
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_user(gateway: str, name: str) -> User:
    """Register and log in a fresh user through a gateway."""
    username = f"{name}_{secrets.token_hex(4)}"
    account = {"username": username, "email": f"{username}@example.org", "password": "correct horse battery"}
    octets = ".".join(str(secrets.randbelow(250)) for _ in range(3))
    xff = {"X-Forwarded-For": f"10.{octets}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30, headers=xff) as http:
        reply = await http.post("/api/register", json=account)
        assert reply.status_code == 201, reply.text
        login = await http.post("/api/login", json={"login": username, "password": account["password"]})
        assert login.status_code == 200, login.text
        return User(reply.json()["user"]["user_id"], login.json()["access_token"])


class Socket:
    """A chat WebSocket on a gateway, collecting every frame it receives."""

    def __init__(self, gateway: str, user: User, via: TcpProxy | None = None) -> None:
        url = gateway.replace("http://", "ws://")
        if via is not None:
            url = f"ws://{via.address}"
        self.url = f"{url}/ws?access_token={user.token}"
        self.user = user
        self.frames: list[dict[str, Any]] = []
        self.ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Socket:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        self.ws = await websockets.connect(self.url, open_timeout=10, ping_interval=None)
        self._reader = asyncio.ensure_future(self._read())
        await self.wait_for(lambda f: f["type"] == "ready", "the ready frame")

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                self.frames.append(json.loads(text))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def abandon(self) -> None:
        """Drop the socket without a close frame (the reader stops; the TCP connection stays)."""
        if self._reader is not None:
            self._reader.cancel()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]

    def bodies(self, conversation_id: str) -> list[str]:
        return [f["message"]["body"] for f in self.of("chat.message")
                if f["message"]["conversation_id"] == conversation_id]

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], what: str,
                       within: float = 20.0) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            return next((f for f in self.frames if match(f)), None)

        return await wait_until(found, within, what, interval=0.05)


async def send_over(socket: Socket, conversation_id: str, body: str, client_message_id: str | None = None,
                    within: float = 20.0) -> dict[str, Any]:
    """chat.send on the socket; the chat.sent frame (or AssertionError with the chat.error)."""
    cid = client_message_id or uuid.uuid4().hex
    await socket.send({"type": "chat.send", "conversation_id": conversation_id, "body": body,
                       "client_message_id": cid})
    frame = await socket.wait_for(
        lambda f: f.get("client_message_id") == cid and f["type"] in ("chat.sent", "chat.error"),
        f"the answer to {cid}", within)
    assert frame["type"] == "chat.sent", frame
    return frame["message"]
