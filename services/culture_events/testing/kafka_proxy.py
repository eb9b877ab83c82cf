"""A TCP proxy in front of Kafka that a test can close and reopen: "Kafka is down" for ONE client.

Why not stop Kafka: it is shared by every test and engineer. Why not a plain TCP proxy: a Kafka
client bootstraps through the address it is given, then connects to the brokers the Metadata
response advertises (127.0.0.1:19092), bypassing the proxy. So this proxy parses the Kafka
framing (size-prefixed requests/responses), remembers the api key and version of each request by
correlation id, and rewrites the broker list of Metadata responses (api key 3, versions 0-8, the
non-flexible ones aiokafka uses) to point at itself. Everything else passes through byte for byte.

close() stops listening and aborts every live connection (clients see resets, then refused
connections); open() listens again on the same port.
"""

from __future__ import annotations

import asyncio
import struct

from culture_events.testing.tcp_proxy import TcpProxy

METADATA = 3
_LAST_NON_FLEXIBLE_METADATA = 8


def rewrite_metadata(body: bytes, version: int, host: str, port: int) -> bytes:
    """A Metadata response body (after the correlation id) with every broker at host:port."""
    pos = 4 if version >= 3 else 0  # throttle_time_ms
    (count,) = struct.unpack_from(">i", body, pos)
    out = bytearray(body[:pos + 4])
    pos += 4
    encoded_host = host.encode()
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", body, pos)
        pos += 4
        (host_len,) = struct.unpack_from(">h", body, pos)
        pos += 2 + host_len + 4  # host, port
        rack = b""
        if version >= 1:
            (rack_len,) = struct.unpack_from(">h", body, pos)
            rack = body[pos:pos + 2 + max(rack_len, 0)]
            pos += 2 + max(rack_len, 0)
        out += struct.pack(">ih", node_id, len(encoded_host)) + encoded_host + struct.pack(">i", port) + rack
    out += body[pos:]
    return bytes(out)


class KafkaProxy(TcpProxy):
    """Listens on 127.0.0.1:<port>, forwards to Kafka, advertises itself as the broker."""

    @property
    def bootstrap(self) -> str:
        """What to give a client as bootstrap servers."""
        return self.address

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                       kafka_r: asyncio.StreamReader, kafka_w: asyncio.StreamWriter) -> None:
        """Frame by frame, rewriting the brokers of each Metadata response to this proxy."""
        pending: dict[int, tuple[int, int]] = {}

        async def requests() -> None:
            while True:
                size_bytes = await client_r.readexactly(4)
                frame = await client_r.readexactly(struct.unpack(">i", size_bytes)[0])
                api_key, api_version, correlation_id = struct.unpack_from(">hhi", frame, 0)
                pending[correlation_id] = (api_key, api_version)
                kafka_w.write(size_bytes + frame)
                await kafka_w.drain()

        async def responses() -> None:
            while True:
                size_bytes = await kafka_r.readexactly(4)
                frame = await kafka_r.readexactly(struct.unpack(">i", size_bytes)[0])
                (correlation_id,) = struct.unpack_from(">i", frame, 0)
                api_key, api_version = pending.pop(correlation_id, (-1, -1))
                if api_key == METADATA and api_version <= _LAST_NON_FLEXIBLE_METADATA:
                    frame = frame[:4] + rewrite_metadata(frame[4:], api_version, "127.0.0.1", self.port)
                    size_bytes = struct.pack(">i", len(frame))
                client_w.write(size_bytes + frame)
                await client_w.drain()

        tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(responses())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_w, kafka_w):
                writer.transport.abort()
