"""`culture dev up`: run every role of the registration slice as local processes.

Starts `culture serve SERVICE --role ROLE` children in dependency order, each on its fixed local
port (DEV_PORTS), waits until each is healthy (gRPC health SERVING; the gateway's /healthz 200),
prints the gateway URL, and on Ctrl-C/SIGTERM stops them in reverse order (SIGTERM, then SIGKILL
after a grace period). A child that dies takes the whole group down with its log tail shown:
half a slice is worse than none. Logs: <state dir>/logs/dev-<service>-<role>.log.

The children get the local stack's endpoints (culture_stack.endpoints) unless the environment sets
them: the services themselves have no defaults pointing here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culture_stack.endpoints import with_platform_env

#: the local ports of the slice's roles (also the gateway's default upstream addresses). Below 32768:
#: ports in Linux's ephemeral range (ip_local_port_range, 32768-60999 by default) are handed to
#: outgoing connections, and a long-lived one of a server started before (kube-apiserver -> etcd held
#: 127.0.0.1:50094 here) makes a role's listen fail for as long as the connection lives.
DEV_PORTS: dict[tuple[str, str], int] = {
    ("identity", "api-write"): 25051,
    ("identity", "api-read"): 25052,
    ("identity", "relay"): 25053,
    ("notifier", "api-read"): 25061,
    ("notifier", "worker"): 25062,
    ("catalog", "worker"): 25071,
    ("catalog", "relay"): 25072,
    ("catalog", "api-write"): 25073,
    ("catalog", "api-read"): 25074,
    ("mailer", "worker"): 25081,
    ("graph", "worker"): 25091,
    ("graph", "relay"): 25092,
    ("graph", "api-write"): 25093,
    ("graph", "api-read"): 25094,
    ("feed", "worker"): 25101,
    ("feed", "api-read"): 25102,
    ("chat", "api-write"): 25111,
    ("chat", "api-read"): 25112,
    ("chat", "relay"): 25113,
    ("gateway", "api"): 8080,
}

#: start order: stores' owners first, consumers next, the edge last (stop order is the reverse)
SLICE: tuple[tuple[str, str], ...] = (
    ("identity", "api-write"), ("identity", "api-read"), ("identity", "relay"),
    ("notifier", "worker"), ("notifier", "api-read"), ("catalog", "worker"), ("catalog", "relay"),
    ("catalog", "api-write"), ("catalog", "api-read"), ("mailer", "worker"),
    ("graph", "worker"), ("graph", "relay"), ("graph", "api-write"), ("graph", "api-read"),
    ("feed", "worker"), ("feed", "api-read"),
    ("chat", "api-write"), ("chat", "api-read"), ("chat", "relay"),
    ("gateway", "api"),
)


@dataclasses.dataclass
class Child:
    """One supervised role process."""

    service: str
    role: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.service} {self.role}"

    @property
    def is_http(self) -> bool:
        return self.service == "gateway"


def say(message: str) -> None:
    """One progress line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


def available_roles(wanted: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """(the (service, role) pairs this build has, notes on the ones it lacks)."""
    from culture_runtime.serve import roles_of

    have, missing = [], []
    for service, role in wanted:
        if role in roles_of(service):
            have.append((service, role))
        else:
            missing.append(f"{service} {role}")
    return have, missing


_DEV_CLIENT_ADDRESS_KEY = secrets.token_urlsafe(32)


def child_env(child: Child, ports: dict[tuple[str, str], int], present: Sequence[tuple[str, str]],
              base: dict[str, str]) -> dict[str, str]:
    """The environment of one child: its port, and for the gateway where its upstreams are."""
    env = dict(base)
    # the gateway signs client addresses and identity verifies them with one key per `dev up`
    env.setdefault("CULTURE_CLIENT_ADDRESS_KEY", _DEV_CLIENT_ADDRESS_KEY)
    # a developer's seed and benchmarks register many users from one address, faster than the
    # production limits (10 per address and 3000 in all per 10 minutes) allow
    env.setdefault("CULTURE_IDENTITY_REGISTER_MAX_PER_ADDRESS", "100000")
    env.setdefault("CULTURE_IDENTITY_REGISTER_MAX_TOTAL", "1000000")
    ports = {**DEV_PORTS, **ports}  # an upstream this build lacks keeps its usual address
    if child.is_http:
        env["CULTURE_GATEWAY_PORT"] = str(child.port)
        env["CULTURE_GATEWAY_IDENTITY_WRITE"] = f"127.0.0.1:{ports[('identity', 'api-write')]}"
        env["CULTURE_GATEWAY_IDENTITY_READ"] = f"127.0.0.1:{ports[('identity', 'api-read')]}"
        env["CULTURE_GATEWAY_NOTIFIER"] = f"127.0.0.1:{ports[('notifier', 'api-read')]}"
        env["CULTURE_GATEWAY_CATALOG_WRITE"] = f"127.0.0.1:{ports[('catalog', 'api-write')]}"
        env["CULTURE_GATEWAY_CATALOG_READ"] = f"127.0.0.1:{ports[('catalog', 'api-read')]}"
        env["CULTURE_GATEWAY_GRAPH_WRITE"] = f"127.0.0.1:{ports[('graph', 'api-write')]}"
        env["CULTURE_GATEWAY_GRAPH_READ"] = f"127.0.0.1:{ports[('graph', 'api-read')]}"
        env["CULTURE_GATEWAY_FEED_READ"] = f"127.0.0.1:{ports[('feed', 'api-read')]}"
        env["CULTURE_GATEWAY_CHAT_WRITE"] = f"127.0.0.1:{ports[('chat', 'api-write')]}"
        env["CULTURE_GATEWAY_CHAT_READ"] = f"127.0.0.1:{ports[('chat', 'api-read')]}"
        required = [name for name, key in (("identity-write", ("identity", "api-write")),
                                           ("identity-read", ("identity", "api-read")),
                                           ("notifier", ("notifier", "api-read")),
                                           ("catalog-write", ("catalog", "api-write")),
                                           ("catalog-read", ("catalog", "api-read")),
                                           ("graph-write", ("graph", "api-write")),
                                           ("graph-read", ("graph", "api-read")),
                                           ("feed-read", ("feed", "api-read")),
                                           ("chat-write", ("chat", "api-write")),
                                           ("chat-read", ("chat", "api-read"))) if key in present]
        env["CULTURE_GATEWAY_REQUIRED_UPSTREAMS"] = "[" + ",".join(f'"{n}"' for n in required) + "]"
    else:
        env["CULTURE_GRPC_PORT"] = str(child.port)
    if child.service == "feed":  # the worker asks the graph for the followers a review fans out to
        env["CULTURE_FEED_GRAPH_READ"] = f"127.0.0.1:{ports[('graph', 'api-read')]}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def healthy(child: Child) -> bool:
    """One health probe: gRPC health SERVING, or the gateway's /healthz answering 200."""
    if child.is_http:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{child.port}/healthz", timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{child.port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


#: where free_port() looks: below the ephemeral range (32768-) and Kubernetes' NodePorts (30000-),
#: clear of DEV_PORTS
FREE_PORTS = tuple(sorted(set(range(20000, 30000)) - set(DEV_PORTS.values())))
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on right now, for a server a test or benchmark starts next.

    Not bind(0): that hands out a port from the ephemeral range, where any outgoing connection may
    take it before the server binds, and may hand a port just released out again, so two roles of one
    run got the same port (a gateway's health check then reached a gRPC server). This one is below
    that range and never the same twice in a process."""
    for _ in range(2000):
        port = secrets.choice(FREE_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port among {len(FREE_PORTS)} after 2000 tries")


async def topic_ends(bootstrap: str, topics: Sequence[str]) -> dict[Any, int]:
    """{TopicPartition: end offset} of the given topics that exist."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # partitions_for() fetches fresh metadata
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await consumer.start()
    try:
        existing = await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics if t in existing
               for p in sorted(await producer.partitions_for(t))]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()
        await producer.stop()


async def position_groups_at_end(bootstrap: str, groups: Sequence[str], topics: Sequence[str]) -> None:
    """Commit, for each (new) consumer group, the current end of every existing topic, so a worker
    in that group reads only what is published from now on (tests, benchmarks: no history replay)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import OffsetAndMetadata

    ends = await topic_ends(bootstrap, topics)
    for group in groups:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            if ends:
                consumer.assign(list(ends))
                await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
        finally:
            await consumer.stop()


class Supervisor:
    """Starts, watches and stops the children.

    `ports` maps (service, role) to its port (DEV_PORTS for `culture dev up`, free ports in tests);
    `env` is the base environment of every child, `role_env` extra variables per (service, role).
    """

    def __init__(self, roles: Sequence[tuple[str, str]], *, ports: dict[tuple[str, str], int] | None = None,
                 log_dir: Path, start_timeout: float = 90.0, env: dict[str, str] | None = None,
                 role_env: dict[tuple[str, str], dict[str, str]] | None = None,
                 log_prefix: str = "dev") -> None:
        self.ports = dict(ports or DEV_PORTS)
        self.present = list(roles)
        self.children = [Child(s, r, self.ports[(s, r)], log_dir / f"{log_prefix}-{s}-{r}.log")
                         for s, r in roles]
        self.start_timeout = start_timeout
        self.env = dict(os.environ if env is None else env)
        self.role_env = role_env or {}
        self.stop_requested = False
        #: optional roles that did not start: (service, role) -> why
        self.failed: dict[tuple[str, str], str] = {}

    def child(self, service: str, role: str) -> Child:
        """The child running (service, role)."""
        return next(c for c in self.children if (c.service, c.role) == (service, role))

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def start(self, optional: Sequence[tuple[str, str]] = ()) -> None:
        """Start each child and wait until it is healthy; raises RuntimeError on failure.

        An `optional` role that fails is stopped, recorded in `failed` and left out (tests use it so
        one unfinished service does not hide the results of the others)."""
        taken = [c for c in self.children if not port_free(c.port)]
        if taken:
            raise RuntimeError("ports already in use: " + ", ".join(f"{c.port} ({c.name})" for c in taken)
                               + "; is `culture dev up` running already? Stop it first.")
        for child in list(self.children):
            if self.stop_requested:
                return
            try:
                self._start_one(child)
            except RuntimeError as exc:
                if (child.service, child.role) not in optional:
                    raise
                say(f"    {child.name}: left out: {exc}")
                self._stop_one(child, 10.0)
                self.failed[(child.service, child.role)] = str(exc)
                self.children.remove(child)
                self.present.remove((child.service, child.role))

    def _start_one(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "culture_cli.main", "serve", child.service, "--role", child.role]
        env = {**child_env(child, self.ports, self.present, self.env),
               **self.role_env.get((child.service, child.role), {})}
        with child.log_path.open("ab") as log:
            # a session of its own: Ctrl-C reaches only us, and we stop the children in order
            child.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        started = time.monotonic()
        say(f"==> {child.name}: starting on port {child.port} (pid {child.proc.pid}, log {child.log_path})")
        while not healthy(child):
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode} while "
                                   f"starting; last log lines:\n{tail(child.log_path)}")
            if time.monotonic() - started > self.start_timeout:
                raise RuntimeError(f"{child.name} was not healthy within {self.start_timeout:.0f}s; "
                                   f"last log lines:\n{tail(child.log_path)}")
            if self.stop_requested:
                return
            time.sleep(0.2)
        say(f"    {child.name}: healthy in {time.monotonic() - started:.1f}s")

    def watch(self) -> int:
        """Wait for a stop request (0) or a child's death (1)."""
        while not self.stop_requested:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    say(f"error: {child.name} exited with code {child.proc.returncode}; "
                        f"last log lines:\n{tail(child.log_path)}")
                    return 1
            time.sleep(0.5)
        return 0

    def stop(self, grace: float = 15.0) -> None:
        """Stop the children in reverse start order: SIGTERM, wait `grace`, then SIGKILL."""
        for child in reversed(self.children):
            self._stop_one(child, grace)

    @staticmethod
    def _stop_one(child: Child, grace: float) -> None:
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return
        say(f"==> stopping {child.name} (pid {proc.pid})")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            say(f"    {child.name} did not stop within {grace:.0f}s; killing it")
            proc.kill()
            proc.wait()


def _log_dir() -> Path:
    from culture_stack.server import Context

    return Context.default().state / "logs"


def _seed_if_empty(gateway: str) -> None:
    """Load the demo data (`culture seed`, default sizes) unless the catalog has works already."""
    import asyncio
    import json

    from culture_stack.seed import Seeder, SeedError, SeedPlan

    try:
        with urllib.request.urlopen(f"{gateway}/api/works?page_size=1", timeout=10) as reply:
            if json.load(reply).get("works"):
                say("==> demo data: the catalog has works already; not seeding")
                return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        say(f"==> demo data: cannot ask the catalog ({exc}); not seeding")
        return
    say("==> demo data: seeding an empty catalog (culture seed)")
    try:
        state = asyncio.run(Seeder(SeedPlan(gateway=gateway), say).run())
    except SeedError as exc:
        say(f"==> demo data: seeding failed: {exc} (the slice keeps running)")
        return
    say(f"==> demo data: {len(state.users)} users, {len(state.works)} works, {state.reviews} reviews, "
        f"{state.follows} follows")


def _up(args: argparse.Namespace) -> int:
    present, missing = available_roles(SLICE)
    if missing:
        say("note: not in this build yet, not started: " + ", ".join(missing))
    if args.stack:
        from culture_stack import registry, stack
        from culture_stack.server import Context

        known = {s.name for s in registry.all_servers()}
        names = [n for n in args.stack if n in known]
        if len(names) < len(args.stack):
            say("note: no recipe yet for: " + ", ".join(n for n in args.stack if n not in known))
        say("==> bringing up the servers the slice needs: " + ", ".join(names))
        stack.up(Context.default(), registry.select(names))
    supervisor = Supervisor(present, log_dir=_log_dir(), start_timeout=args.start_timeout,
                            env=with_platform_env(dict(os.environ)))
    children = supervisor.children
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, supervisor._request_stop)
    code = 0
    try:
        supervisor.start()
        if not supervisor.stop_requested:
            gateway = next((c for c in children if c.is_http), None)
            if gateway is not None:
                say(f"==> the platform is up: gateway http://127.0.0.1:{gateway.port}, "
                    f"UI (API explorer) http://127.0.0.1:{gateway.port}/docs, "
                    f"OpenAPI http://127.0.0.1:{gateway.port}/openapi.json; Ctrl-C stops it")
                if any(c.service == "catalog" and c.role == "api-write" for c in children):
                    if args.seed:
                        _seed_if_empty(f"http://127.0.0.1:{gateway.port}")
                    else:
                        say(f"    demo data: .venv/bin/culture seed --gateway http://127.0.0.1:{gateway.port}")
            else:
                say("==> the slice is up (no gateway in this build); Ctrl-C stops it")
            code = supervisor.watch()
    except RuntimeError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        supervisor.stop()
        say("==> all slice processes stopped")
    return code


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `dev up` to the top-level `culture` parser."""
    p = subparsers.add_parser("dev", help="run the services locally (development)",
                              description="Run the platform's services as local processes.")
    sub = p.add_subparsers(dest="dev_command", required=True, metavar="SUBCOMMAND")
    up = sub.add_parser(
        "up", help="start every role of the registration slice and supervise them",
        description="Start every role of the registration slice (identity, notifier, catalog, mailer, "
                    "graph, feed, chat, gateway) as `culture serve` children on fixed local ports, wait "
                    "until each is healthy, print the gateway URL; Ctrl-C stops them in reverse order.")
    up.add_argument("--stack", nargs="*",
                    default=["postgres", "redis", "kafka", "mongo", "neo4j", "cassandra", "smtp"],
                    metavar="SERVER",
                    help="local stack servers to bring up first (default: postgres redis kafka mongo neo4j "
                         "cassandra smtp; pass --stack with no names to skip)")
    up.add_argument("--start-timeout", type=float, default=90.0,
                    help="seconds each role may take to become healthy (default 90)")
    up.add_argument("--seed", action="store_true",
                    help="load generated demo data (culture seed) when the catalog is empty")
    up.set_defaults(func=_up)
