"""The gateway's gRPC channels and a watcher of their health (what /healthz reports)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from culture.catalog.v1 import catalog_pb2_grpc
from culture.chat.v1 import chat_pb2_grpc
from culture.feed.v1 import feed_pb2_grpc
from culture.graph.v1 import graph_pb2_grpc
from culture.identity.v1 import identity_pb2_grpc
from culture.notifier.v1 import notifier_pb2_grpc
from culture_gateway.settings import UPSTREAMS, GatewaySettings
from culture_grpc.client import insecure_channel

log = logging.getLogger("culture_gateway")

_SERVING = health_pb2.HealthCheckResponse.SERVING


class Upstreams:
    """Channels to identity (write, read) and notifier, plus their last known health."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        # an upstream this installation does not run (not configured) gets no channel, and its stub
        # fails every call with UNAVAILABLE, as an unreachable one would
        self.targets = {name: target for name in UPSTREAMS if (target := settings.upstream(name)) is not None}
        self.channels = {name: insecure_channel(target) for name, target in self.targets.items()}
        self.identity_write = self._stub(identity_pb2_grpc.IdentityServiceStub, "identity-write")
        self.identity_read = self._stub(identity_pb2_grpc.IdentityServiceStub, "identity-read")
        self.notifier = self._stub(notifier_pb2_grpc.NotifierServiceStub, "notifier")
        self.catalog_write = self._stub(catalog_pb2_grpc.CatalogServiceStub, "catalog-write")
        self.catalog_read = self._stub(catalog_pb2_grpc.CatalogServiceStub, "catalog-read")
        self.graph_write = self._stub(graph_pb2_grpc.GraphServiceStub, "graph-write")
        self.graph_read = self._stub(graph_pb2_grpc.GraphServiceStub, "graph-read")
        self.feed_read = self._stub(feed_pb2_grpc.FeedServiceStub, "feed-read")
        self.chat_write = self._stub(chat_pb2_grpc.ChatServiceStub, "chat-write")
        self.chat_read = self._stub(chat_pb2_grpc.ChatServiceStub, "chat-read")
        self.health: dict[str, str] = dict.fromkeys(self.targets, "UNKNOWN")
        self._task: asyncio.Task[None] | None = None

    def _stub(self, stub_class: Any, name: str) -> Any:
        channel = self.channels.get(name)
        return stub_class(channel) if channel is not None else _Unconfigured(name)

    @property
    def ready(self) -> bool:
        """Whether every required upstream answered SERVING at the last check."""
        return all(self.health[name] == "SERVING" for name in self.settings.required_upstreams)

    async def check(self) -> None:
        """Ask each upstream's standard health service once."""

        async def one(name: str) -> None:
            stub = health_pb2_grpc.HealthStub(self.channels[name])
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                state = "SERVING" if reply.status == _SERVING else "NOT_SERVING"
            except grpc.aio.AioRpcError as exc:
                state = "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
            if state != self.health[name]:
                log.info("gateway: upstream %s (%s) is %s", name, self.targets[name], state)
            self.health[name] = state

        await asyncio.gather(*(one(name) for name in self.targets))

    async def _watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.settings.health_interval_seconds)

    async def start(self) -> None:
        """Check once, then keep checking in the background."""
        await self.check()
        self._task = asyncio.ensure_future(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(ch.close() for ch in self.channels.values()))


class _Unconfigured:
    """The stub of an upstream with no address: every call fails as UNAVAILABLE (the gateway says 503)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            why = f"the {self.name} upstream is not configured in this installation"
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details=why)

        return call
