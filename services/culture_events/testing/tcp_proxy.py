"""A TCP proxy for any server, and a thread that hosts proxies: "the server is down" for the clients
that were pointed at the proxy, while the shared server keeps running for everyone else.

`TcpProxy` forwards bytes both ways; `close()` aborts every live connection and stops listening
(clients see resets, then refused connections), `open()` listens again on the same port; `freeze()`
keeps every connection open but passes nothing more on (a peer that died without closing). It suits
every protocol whose clients connect only to the address they were given: PostgreSQL, Redis, SMTP,
Neo4j over `bolt://` (not `neo4j://` routing), MongoDB with `directConnection=true`, Cassandra with
the cluster's port set to the proxy's (one node). Kafka clients follow the brokers a Metadata response
advertises: use `KafkaProxy`, which rewrites them.

`ProxyThread` runs proxies (TcpProxy or KafkaProxy: anything with async `open()`/`close()` and a
`port`) on an event loop of its own thread, so a test or benchmark that blocks its own loop (starting
processes, waiting on them) never stalls the traffic; its `open`/`close`/`add` are plain calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar


class _Proxy(Protocol):
    port: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...


P = TypeVar("P", bound=_Proxy)
T = TypeVar("T")


class TcpProxy:
    """127.0.0.1:<port> -> (host, port), byte for byte."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen = False
        self.connections = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def open(self) -> None:
        """Start listening (on the same port as before, after a close); traffic flows again."""
        self._frozen = False
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def freeze(self) -> None:
        """Keep every connection open but pass nothing more on, either way, until the next open()."""
        self._frozen = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await self._forward(reader, writer, up_reader, up_writer)
        finally:
            self._writers -= {writer, up_writer}

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                       up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
        """Carry one connection's bytes both ways until either side ends (a protocol-aware proxy
        overrides this)."""

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self._frozen:
                        await asyncio.Event().wait()  # swallow everything from now on, close nothing
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))


class ProxyThread:
    """An event loop in a daemon thread that serves proxies; every method is a plain blocking call."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxies", daemon=True)
        self._thread.start()
        self.proxies: list[Any] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def add(self, proxy: P) -> P:
        """Open `proxy` on this thread's loop and keep it (its port is known on return)."""
        self.run(proxy.open())
        self.proxies.append(proxy)
        return proxy

    def open(self, proxy: _Proxy) -> None:
        self.run(proxy.open())

    def close(self, proxy: _Proxy) -> None:
        self.run(proxy.close())

    def stop(self) -> None:
        """Close every proxy and end the thread."""
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                self.run(proxy.close(), 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
