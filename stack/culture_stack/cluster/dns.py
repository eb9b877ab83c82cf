"""Cluster DNS for the local node: `SERVICE.NAMESPACE.svc.cluster.local` -> the Service's address.

An equivalent of CoreDNS's `kubernetes` plugin for what pods here need: A records for Services
(the ClusterIP, or the ready endpoint addresses of a headless Service), `POD-IP.NAMESPACE.pod`
names, and NXDOMAIN for the rest of the cluster domain. Other names are forwarded to the host's
resolver. It polls the API every second (Services and EndpointSlices), which keeps it simple and
is plenty for one node. Run: `python -m culture_stack.cluster.dns --listen 10.244.0.1 --kubeconfig F`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import struct
import sys
from collections.abc import Mapping

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger("culture-dns")

TTL = 5


@dataclasses.dataclass(frozen=True)
class ServiceRecord:
    """What DNS needs to know about one Service."""

    cluster_ip: str | None  # None for a headless Service
    endpoints: tuple[str, ...] = ()


def answer_addresses(qname: str, records: Mapping[tuple[str, str], ServiceRecord],
                     domain: str = "cluster.local") -> list[str] | None:
    """The A-record addresses of a name in the cluster domain: a list (maybe empty: NODATA),
    or None when the name does not exist (NXDOMAIN). Pure, so the rules are unit-testable."""
    name = qname.rstrip(".").lower()
    suffix = "." + domain
    if not name.endswith(suffix):
        return None
    labels = name[: -len(suffix)].split(".")
    if len(labels) == 3 and labels[2] == "svc":
        rec = records.get((labels[1], labels[0]))
        if rec is None:
            return None
        return [rec.cluster_ip] if rec.cluster_ip else list(rec.endpoints)
    if len(labels) == 3 and labels[2] == "pod":
        with contextlib.suppress(ValueError):
            return [str(ipaddress.IPv4Address(labels[0].replace("-", ".")))]
    return None


class Resolver:
    """Answers DNS queries from the current Service table, forwarding outside names upstream."""

    def __init__(self, domain: str, upstream: str | None) -> None:
        self.domain = domain
        self.upstream = upstream
        self.records: dict[tuple[str, str], ServiceRecord] = {}

    async def handle(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage in: no answer, as a real server does
            return None
        if not query.question:
            return None
        q = query.question[0]
        name = q.name.to_text()
        if name.rstrip(".").lower().endswith(self.domain):
            return self._local(query, q).to_wire()
        return await self._forward(query, wire)

    def _local(self, query: dns.message.Message, q: dns.rrset.RRset) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA | dns.flags.RA
        addrs = answer_addresses(q.name.to_text(), self.records, self.domain)
        if addrs is None:
            resp.set_rcode(dns.rcode.NXDOMAIN)
        elif q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and addrs:
            resp.answer.append(
                dns.rrset.from_text_list(q.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, addrs))
        return resp

    async def _forward(self, query: dns.message.Message, wire: bytes) -> bytes:
        if self.upstream:
            import dns.asyncquery

            with contextlib.suppress(Exception):
                resp = await dns.asyncquery.udp(query, self.upstream, timeout=2.0)
                return resp.to_wire()
        resp = dns.message.make_response(query)
        resp.set_rcode(dns.rcode.SERVFAIL)
        return resp.to_wire()


def read_records(core: object, discovery: object) -> dict[tuple[str, str], ServiceRecord]:
    """The Service table from the API: (namespace, name) -> record."""
    ready: dict[tuple[str, str], list[str]] = {}
    for sl in discovery.list_endpoint_slice_for_all_namespaces().items:  # type: ignore[attr-defined]
        svc = (sl.metadata.labels or {}).get("kubernetes.io/service-name")
        if not svc or sl.address_type != "IPv4":
            continue
        for ep in sl.endpoints or []:
            if ep.conditions is None or ep.conditions.ready is not False:
                ready.setdefault((sl.metadata.namespace, svc), []).extend(ep.addresses)
    out: dict[tuple[str, str], ServiceRecord] = {}
    for s in core.list_service_for_all_namespaces().items:  # type: ignore[attr-defined]
        key = (s.metadata.namespace, s.metadata.name)
        ip = s.spec.cluster_ip
        headless = not ip or ip == "None"
        out[key] = ServiceRecord(None if headless else ip, tuple(sorted(set(ready.get(key, [])))))
    return out


async def poll(resolver: Resolver, kubeconfig: str, interval: float) -> None:
    """Refresh the Service table forever; keep the last good table when the API is unreachable."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    while True:
        try:
            resolver.records = await asyncio.to_thread(read_records, core, discovery)
        except Exception as exc:  # noqa: BLE001 - keep serving the last table
            log.warning("cannot list services: %s", exc)
        await asyncio.sleep(interval)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        async def reply() -> None:
            out = await self.resolver.handle(data)
            if out is not None and self.transport is not None:
                self.transport.sendto(out, addr)

        asyncio.get_running_loop().create_task(reply())


async def _tcp(resolver: Resolver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while True:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            out = await resolver.handle(await reader.readexactly(size))
            if out is None:
                break
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    writer.close()


def host_upstream(resolv_conf: str = "/etc/resolv.conf") -> str | None:
    """The host's first IPv4 nameserver (not a loopback stub, which pods could not share)."""
    with contextlib.suppress(OSError):
        for line in open(resolv_conf).read().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    ip = ipaddress.ip_address(parts[1])
                    if ip.version == 4:
                        return str(ip)
    return None


async def serve(listen: str, port: int, kubeconfig: str, domain: str, interval: float) -> None:
    """Serve DNS on UDP and TCP until cancelled."""
    resolver = Resolver(domain, host_upstream())
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: _Udp(resolver), local_addr=(listen, port))
    server = await asyncio.start_server(lambda r, w: _tcp(resolver, r, w), listen, port)
    log.info("cluster DNS on %s:%d for %s, upstream %s", listen, port, domain, resolver.upstream)
    async with server:
        await poll(resolver, kubeconfig, interval)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description="Cluster DNS for the local single-node cluster.")
    p.add_argument("--listen", required=True, help="address to serve on (the pod gateway address)")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--domain", default="cluster.local")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between two API polls")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    asyncio.run(serve(args.listen, args.port, args.kubeconfig, args.domain, args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
