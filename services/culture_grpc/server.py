"""The server bootstrap every CulturePlatform service uses.

    server = GrpcServer("identity", GrpcServerSettings())     # settings from CULTURE_GRPC_* env
    server.add_service(identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
                       IdentityServicer(store), identity_pb2_grpc.add_IdentityServiceServicer_to_server)
    await server.start()        # listening, health NOT_SERVING
    await store.connect()
    server.set_ready()          # health SERVING: the store is connected, the consumers run
    await server.serve_until_signal()   # SIGTERM/SIGINT -> NOT_SERVING, drain, graceful stop

It adds the standard gRPC health service (grpc.health.v1.Health, for Kubernetes gRPC probes)
and server reflection (for grpcurl and friends), and installs the interceptor chain of
`culture_grpc.interceptors`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from culture_grpc.interceptors import default_interceptors

log = logging.getLogger("culture_grpc")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcServerSettings(BaseSettings):
    """Server settings, read once from CULTURE_GRPC_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_GRPC_")

    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 inside a pod")
    port: int = Field(0, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    default_timeout_seconds: float = Field(
        10.0, gt=0, description="timeout applied to unary-response calls that carry no deadline"
    )
    drain_seconds: float = Field(
        0.0, ge=0, description="how long health says NOT_SERVING before the server stops taking calls"
    )
    grace_seconds: float = Field(10.0, ge=0, description="how long in-flight calls may finish on shutdown")


class GrpcServer:
    """A grpc.aio server with health, reflection and the standard interceptors."""

    def __init__(
        self,
        name: str,
        settings: GrpcServerSettings | None = None,
        *,
        extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.name = name
        self.settings = settings or GrpcServerSettings()
        self._server = grpc.aio.server(
            interceptors=[*default_interceptors(self.settings.default_timeout_seconds), *extra_interceptors],
            options=list(options),
        )
        self._health = health.aio.HealthServicer()
        self._service_names: list[str] = []
        self._port: int | None = None
        self._ready = False
        self._stopping: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: the gRPC server is not started")
        return self._port

    @property
    def address(self) -> str:
        """host:port to dial (after start)."""
        return f"{self.settings.host}:{self.port}"

    @property
    def service_names(self) -> tuple[str, ...]:
        """The full names of the application services added so far."""
        return tuple(self._service_names)

    def add_service(
        self,
        service: ServiceDescriptor,
        servicer: object,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
    ) -> None:
        """Register a servicer, e.g. (identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
        IdentityServicer(...), identity_pb2_grpc.add_IdentityServiceServicer_to_server)."""
        if self._port is not None:
            raise RuntimeError(f"{self.name}: add services before start()")
        add_to_server(servicer, self._server)
        self._service_names.append(service.full_name)

    async def start(self) -> int:
        """Listen and serve; health says NOT_SERVING until set_ready(). Returns the bound port."""
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        for service in ("", *self._service_names):  # "" is the whole server, as probes ask
            await self._health.set(service, NOT_SERVING)
        target = f"{self.settings.host}:{self.settings.port}"
        try:
            port = self._server.add_insecure_port(target)
        except RuntimeError as error:
            raise RuntimeError(f"{self.name}: cannot listen on {target}: {error} (port taken?)") from error
        await self._server.start()
        self._port = port
        log.info(
            "%s: gRPC server listening on %s:%d (NOT_SERVING until ready)",
            self.name,
            self.settings.host,
            port,
        )
        return port

    async def set_ready(self, ready: bool = True) -> None:
        """Say SERVING (or NOT_SERVING again, e.g. when the store connection is lost)."""
        if self._stopping is not None:
            return  # shutting down: stays NOT_SERVING
        self._ready = ready
        for service in ("", *self._service_names):
            await self._health.set(service, SERVING if ready else NOT_SERVING)
        log.info("%s: health %s", self.name, "SERVING" if ready else "NOT_SERVING")

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: NOT_SERVING at once, then after drain_seconds stop taking calls and
        give in-flight ones `grace` seconds. Safe to call more than once."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        await self._health.enter_graceful_shutdown()  # every service NOT_SERVING, for good
        log.info("%s: shutting down (NOT_SERVING, draining %.1fs)", self.name, self.settings.drain_seconds)
        if self.settings.drain_seconds:
            # Give probes and load balancers time to see NOT_SERVING before connections are refused.
            await asyncio.sleep(self.settings.drain_seconds)
        await self._server.stop(self.settings.grace_seconds if grace is None else grace)
        log.info("%s: gRPC server stopped", self.name)

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped."""
        await self._server.wait_for_termination()

    async def serve_until_signal(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
        try:
            await stop_requested.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await self.stop()
