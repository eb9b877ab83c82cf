"""`run_grpc_service`: the life of one gRPC role process, the same for every service.

    listen (health NOT_SERVING) -> start dependencies -> freeze what start-up built -> SERVING
    -> background tasks run -> SIGTERM/SIGINT (or a background task dies) -> NOT_SERVING -> drain,
    stop -> close dependencies

What start-up built (modules, protobuf descriptors, pydantic models, the drivers' cluster metadata)
lives as long as the process: `gc.freeze()` moves it out of the cyclic collector's way, so no
full collection walks it while a call waits (measured on the feed's api-read: one full collection
stalled every call in flight for tens of milliseconds, at times hundreds on a loaded machine).

Roles without an API of their own (relays, workers) still run it with no services: their health
endpoint is what probes and the local supervisor (`culture dev up`) watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from culture_grpc.server import GrpcServer, GrpcServerSettings

log = logging.getLogger("culture_runtime")

ServiceSpec = tuple[ServiceDescriptor, object, Callable[[Any, Any], None]]


async def run_grpc_service(
    name: str,
    services: Sequence[ServiceSpec] = (),
    *,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    background: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = (),
    settings: GrpcServerSettings | None = None,
    ready: Callable[[], bool] | None = None,
    ready_check_seconds: float = 1.0,
) -> None:
    """Serve `services` until a signal; see the module docstring for the order of things.

    `background` callables get a stop event and should return soon after it is set; if one ends or
    fails on its own the process shuts down (a supervisor restarts it), never runs half-alive.
    `ready`, when given, is asked every `ready_check_seconds` after start: health follows it
    (NOT_SERVING while it says False, e.g. a worker whose router stopped consuming), so probes see a
    stuck process and the kubelet restarts it.
    """
    server = GrpcServer(name, settings or GrpcServerSettings())
    for descriptor, servicer, add in services:
        server.add_service(descriptor, servicer, add)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    failure: BaseException | str | None = None
    try:
        await server.start()
        if on_start is not None:
            await on_start()
        gc.collect()  # start-up's garbage first: frozen objects are never collected
        gc.freeze()
        tasks = [asyncio.ensure_future(job(stop)) for job in background]
        await server.set_ready()
        if ready is not None:
            tasks.append(asyncio.ensure_future(_follow(server, ready, ready_check_seconds, stop)))
        log.info("%s: ready on %s", name, server.address)
        waiter = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                log.error("%s: a background task failed: %r; shutting down", name, failure)
            elif task is not waiter and not stop.is_set():
                failure = "a background task ended on its own"
                log.error("%s: %s; shutting down", name, failure)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stop.set()
        await server.stop()  # NOT_SERVING first, then drain and stop taking calls
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        if on_stop is not None:
            await on_stop()
        log.info("%s: stopped", name)
    if failure is not None:
        detail = failure if isinstance(failure, str) else f"{type(failure).__name__}: {failure}"
        raise SystemExit(f"{name}: {detail}")


async def _follow(server: GrpcServer, ready: Callable[[], bool], every: float, stop: asyncio.Event) -> None:
    """Keep the server's health in step with `ready()` until `stop` is set."""
    serving = True  # set_ready() was just called (a worker's router.run() began before it)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        now = bool(ready())
        if now != serving:
            log.warning("%s: %s", server.name, "ready again" if now else "not ready (health NOT_SERVING)")
            await server.set_ready(now)
            serving = now
