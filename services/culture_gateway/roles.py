"""`culture serve gateway --role api`: the gateway on uvicorn, with a graceful shutdown:
on SIGTERM/SIGINT /healthz says 503 ("draining") first, open SSE/WebSocket streams end, then
uvicorn stops taking connections and finishes the requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from culture_gateway.app import Gateway, build_app
from culture_gateway.settings import GatewaySettings
from culture_gateway.upstreams import Upstreams
from culture_runtime.settings import PlatformSettings

log = logging.getLogger("culture_gateway")


class _DrainingServer(uvicorn.Server):
    """uvicorn, but a stop signal first flips readiness and ends the push streams, and the process
    then exits normally (uvicorn would re-raise the signal after serving)."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway, drain: float) -> None:
        super().__init__(config)
        self.gateway = gateway
        self.drain = drain
        self.loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.gateway.draining:  # a second signal: stop now, without waiting for connections
            self.should_exit = self.force_exit = True
            return
        self.gateway.draining = True
        log.info("gateway: shutting down (/healthz 503, draining %.1fs)", self.drain)
        self.loop.call_soon_threadsafe(self.gateway.closing.set)
        self.loop.call_soon_threadsafe(self.loop.call_later, self.drain, self._exit)

    def _exit(self) -> None:
        self.should_exit = True


async def api() -> None:
    """Serve the gateway until SIGTERM/SIGINT."""
    platform, settings = PlatformSettings().require("redis_url"), GatewaySettings()
    upstreams = Upstreams(settings)
    gateway = Gateway(settings, upstreams, platform.redis_url, client_address_key=platform.client_address_key)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await upstreams.start()
        log.info("gateway: listening on http://%s:%d (upstreams %s)", settings.host, settings.port,
                 upstreams.health)
        try:
            yield
        finally:
            if gateway.push.chat is not None:
                await gateway.push.chat.close()
            await upstreams.close()

    config = uvicorn.Config(build_app(gateway, lifespan), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10, ws_max_size=64 * 1024,
                            # a socket that died silently is closed in time for its presence to lapse
                            ws_ping_interval=settings.ws_ping_interval_seconds,
                            ws_ping_timeout=settings.ws_ping_timeout_seconds,
                            ws_per_message_deflate=settings.ws_per_message_deflate)
    await _DrainingServer(config, gateway, settings.drain_seconds).serve()


ROLES = {"api": api}
