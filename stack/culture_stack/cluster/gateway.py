"""The pod gateway: TCP forwarders from the bridge address to the stack's servers on 127.0.0.1.

Why a forwarder and not iptables DNAT to 127.0.0.1: the servers keep listening on loopback only,
and they see connections coming from 127.0.0.1, so their loopback-only access rules (PostgreSQL's
pg_hba, for one) need no change. Run:
`python -m culture_stack.cluster.gateway --listen 10.244.0.1 16443 15432 16379`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from culture_stack.ports import HOST

log = logging.getLogger("culture-gateway")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def _forward(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        log.warning("port %d: %s:%d unreachable: %s", port, HOST, port, exc)
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def serve(listen: str, ports: list[int]) -> None:
    """Forward listen:PORT -> 127.0.0.1:PORT for each port, until cancelled."""
    servers = []
    for port in ports:
        servers.append(await asyncio.start_server(
            lambda r, w, p=port: _forward(p, r, w), listen, port, reuse_address=True))
    log.info("forwarding %s:%s -> %s", listen, ports, HOST)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description="Forward TCP ports from the pod gateway address to 127.0.0.1.")
    p.add_argument("--listen", required=True, help="the pod gateway address")
    p.add_argument("ports", nargs="+", type=int)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    asyncio.run(serve(args.listen, args.ports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
