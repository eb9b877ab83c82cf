"""Faults during a workload, checked by the consistency checker (tests/chaos and bench/chaos.py).

`ChaosRun` starts every role of the slice as local processes (culture_stack.dev.Supervisor), in a
world of their own: a topic namespace, an identity schema, a catalog database, a feed keyspace, a
graph outbox label and consumer groups named after the run. Every role reaches every server through a
proxy the run owns (`culture_events.testing.tcp_proxy`: Kafka, PostgreSQL, the MongoDB-compatible
server, Cassandra, Neo4j, Redis, SMTP), so a fault is a proxy cut and restored, or a role killed
with SIGKILL and started again; the shared servers are never touched. The checker reads the
servers directly (not through the proxies), scoped to the usernames of one workload.

`Workload` drives registrations, follows and reviews through the gateway, retrying each request
until it succeeds (a client that keeps trying while a server is away), in three phases: users
register and rate works (which makes them interested in the works' genres), follow each other,
then review again, so the feed's fan-out has interested followers to reach.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import signal
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from culture_cli import consistency
from culture_cli.consistency_io import Scope, Sources, gather
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy
from culture_events.testing.tcp_proxy import ProxyThread, TcpProxy
from culture_runtime.settings import PlatformSettings
from culture_stack.dev import SLICE, Supervisor, available_roles, free_port
from culture_stack.endpoints import platform_settings

WORKERS = ("catalog", "mailer", "notifier", "graph", "feed")
RELAYS = (("identity", "relay"), ("catalog", "relay"), ("graph", "relay"))
STORES = ("postgres", "mongo", "redis", "cassandra", "neo4j", "smtp")


def _with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


class ChaosRun:
    """The slice's roles behind proxies, with faults to inject (blocking calls; see the module doc)."""

    def __init__(self, log_dir: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or "ch" + uuid.uuid4().hex[:8]
        self.log_dir = log_dir
        self.platform = platform_settings()
        self.proxies = ProxyThread()
        self.proxy: dict[str, Any] = {}
        self.supervisor: Supervisor | None = None
        self.groups = {svc: f"{svc}-{self.run_id}" for svc in WORKERS}
        #: keyspaces made during the run (rebuilds), dropped with the run's own
        self.extra_keyspaces: list[str] = []
        #: graph label prefixes made during the run (rebuilds), dropped with the run
        self.extra_graph_prefixes: list[str] = []

    # -- names -------------------------------------------------------------------------------------

    @property
    def schema(self) -> str:
        return f"chaos_{self.run_id}"

    @property
    def catalog_db(self) -> str:
        return f"catalog_{self.run_id}"

    @property
    def keyspace(self) -> str:
        return f"feed_{self.run_id}"

    @property
    def outbox_label(self) -> str:
        return f"GraphOutbox_{self.run_id}"

    @property
    def gateway(self) -> str:
        assert self.supervisor is not None
        return f"http://127.0.0.1:{self.supervisor.child('gateway', 'api').port}"

    @property
    def graph_prefix(self) -> str:
        """The run's graph label prefix (the pointer is keyed by it; the live graph is unprefixed)."""
        return f"C{self.run_id}_"

    def sources(self, keyspace: str | None = None, graph_prefix: str | None = None) -> Sources:
        """Where the checker reads this run's models (the servers themselves, not the proxies); the
        feed: `keyspace` as it is, or the run's keyspace (or the one a rebuild pointed it to); the
        graph likewise with `graph_prefix`."""
        from culture_stack.server import Context
        from culture_stack.servers.smtp import mail_dir

        return Sources(self.platform, identity_schema=self.schema, catalog_database=self.catalog_db,
                       feed_keyspace=keyspace or self.keyspace, smtp_spool=mail_dir(Context.default()),
                       follow_feed_pointer=keyspace is None,
                       graph_label_prefix=graph_prefix if graph_prefix is not None else self.graph_prefix,
                       follow_graph_pointer=graph_prefix is None)

    # -- life cycle ---------------------------------------------------------------------------------

    def _proxied_env(self) -> dict[str, str]:
        p = self.platform
        kafka_host, _, kafka_port = (p.kafka_bootstrap or "").split(",")[0].rpartition(":")
        self.proxy["kafka"] = self.proxies.add(KafkaProxy(kafka_host, int(kafka_port)))
        pg = urllib.parse.urlsplit(p.postgres_dsn or "")
        self.proxy["postgres"] = self.proxies.add(TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432))
        mongo = urllib.parse.urlsplit(p.mongo_uri or "")
        self.proxy["mongo"] = self.proxies.add(TcpProxy(mongo.hostname or "127.0.0.1", mongo.port or 27017))
        redis = urllib.parse.urlsplit(p.redis_url or "")
        self.proxy["redis"] = self.proxies.add(TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379))
        cassandra = (p.cassandra_contact_points or "127.0.0.1").split(",")[0]
        self.proxy["cassandra"] = self.proxies.add(TcpProxy(cassandra, p.cassandra_port))
        neo = urllib.parse.urlsplit(p.neo4j_uri or "")
        self.proxy["neo4j"] = self.proxies.add(TcpProxy(neo.hostname or "127.0.0.1", neo.port or 7687))
        self.proxy["smtp"] = self.proxies.add(TcpProxy(p.smtp_host or "127.0.0.1", p.smtp_port))
        # one node: the drivers must not find the servers' own addresses (Mongo: directConnection;
        # Cassandra: the cluster port is the proxy's for every host it discovers)
        mongo_uri = _with_port(p.mongo_uri or "", self.proxy["mongo"].port)
        if "directConnection" not in mongo_uri:
            mongo_uri += ("&" if "?" in mongo_uri else "?") + "directConnection=true"
        return {
            "CULTURE_KAFKA_BOOTSTRAP": self.proxy["kafka"].bootstrap,
            "CULTURE_POSTGRES_DSN": _with_port(p.postgres_dsn or "", self.proxy["postgres"].port),
            "CULTURE_MONGO_URI": mongo_uri,
            "CULTURE_REDIS_URL": _with_port(p.redis_url or "", self.proxy["redis"].port),
            "CULTURE_CASSANDRA_CONTACT_POINTS": "127.0.0.1",
            "CULTURE_CASSANDRA_PORT": str(self.proxy["cassandra"].port),
            "CULTURE_NEO4J_URI": _with_port(p.neo4j_uri or "", self.proxy["neo4j"].port),
            "CULTURE_SMTP_HOST": "127.0.0.1",
            "CULTURE_SMTP_PORT": str(self.proxy["smtp"].port),
        }

    def base_env(self) -> dict[str, str]:
        """Every role's environment but the endpoints (this run's names and fast relays)."""
        return {
            "CULTURE_TOPIC_NAMESPACE": self.run_id,
            "CULTURE_IDENTITY_DB_SCHEMA": self.schema,
            "CULTURE_IDENTITY_RELAY_POLL_SECONDS": "0.5",
            "CULTURE_CATALOG_DATABASE": self.catalog_db,
            "CULTURE_CATALOG_RELAY_POLL_SECONDS": "0.5",
            "CULTURE_CATALOG_CACHE_PREFIX": f"{self.run_id}:",
            "CULTURE_GRAPH_OUTBOX_LABEL": self.outbox_label,
            "CULTURE_GRAPH_LABEL_PREFIX": self.graph_prefix,
            "CULTURE_GRAPH_RELAY_POLL_SECONDS": "0.3",
            "CULTURE_FEED_KEYSPACE": self.keyspace,
            "CULTURE_GATEWAY_HEALTH_INTERVAL_SECONDS": "0.5",
            **{f"CULTURE_{svc.upper()}_CONSUMER_GROUP": group for svc, group in self.groups.items()},
        }

    async def create_topics(self, partitions: int = 3) -> None:
        """Every event topic in the run's namespace, as the operator creates them before the services
        start (roles started at once must not subscribe to a topic another role creates later: a
        consumer learns of a new topic only at its next metadata refresh, minutes later)."""
        from culture_contracts.topics import ALL_TOPICS
        from culture_events.backends.kafka import KafkaPublisher

        publisher = KafkaPublisher(self.platform.kafka_bootstrap or "", client_id=f"chaos-{self.run_id}")
        try:
            for topic in ALL_TOPICS:
                await publisher.create_topic(f"{self.run_id}.{topic}", partitions)
        finally:
            await publisher.close()

    def start(self, start_timeout: float = 120.0) -> None:
        """Create the run's topics, open the proxies and start every role (all but the gateway at once)."""
        asyncio.run(self.create_topics())
        present, _missing = available_roles(SLICE)
        env = {**os.environ, **self.base_env(), **self._proxied_env()}
        self.supervisor = Supervisor(present, ports={key: free_port() for key in present},
                                     log_dir=self.log_dir, env=env, log_prefix=self.run_id,
                                     start_timeout=start_timeout)
        # every role but the edge at once (each waits for its own health): on a busy 2-core machine
        # one after the other takes minutes; the gateway last, once its upstreams serve
        from concurrent.futures import ThreadPoolExecutor

        inner = [c for c in self.supervisor.children if not c.is_http]
        with ThreadPoolExecutor(len(inner)) as pool:
            list(pool.map(self.supervisor._start_one, inner))
        for child in self.supervisor.children:
            if child.is_http:
                self.supervisor._start_one(child)

    def stop(self) -> None:
        """Stop the roles, close the proxies, drop the run's schema, database, keyspace and outbox."""
        if self.supervisor is not None:
            self.supervisor.stop(grace=10)
        self.proxies.stop()
        asyncio.run(self._drop())

    async def _drop(self) -> None:
        import asyncpg
        import pymongo

        with contextlib.suppress(Exception):
            with pymongo.MongoClient(self.platform.mongo_uri, serverSelectionTimeoutMS=5000) as mongo:
                mongo.drop_database(self.catalog_db)
        with contextlib.suppress(Exception):
            from culture_events.outbox.neo4j import Neo4jOutbox, driver_from_uri
            from culture_graph.store import drop_namespace

            driver = driver_from_uri(self.platform.neo4j_uri or "")
            try:
                await Neo4jOutbox(self.outbox_label).drop(driver)
                for prefix in (self.graph_prefix, *self.extra_graph_prefixes):
                    await drop_namespace(driver, prefix)
                await driver.execute_query("MATCH (p:CultureGraphPointer {base: $b}) DELETE p",
                                           b=self.graph_prefix)
            finally:
                await driver.close()
        for keyspace in (self.keyspace, *self.extra_keyspaces):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(drop_keyspace, self.platform, keyspace)
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.platform.postgres_dsn)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            await conn.close()

    # -- faults -------------------------------------------------------------------------------------

    def cut(self, server: str) -> None:
        """`server` is unreachable for every role (its proxy stops listening, connections reset)."""
        self.proxies.close(self.proxy[server])

    def restore(self, server: str) -> None:
        self.proxies.open(self.proxy[server])

    def kill(self, service: str, role: str) -> None:
        """SIGKILL the role's process (no graceful anything)."""
        assert self.supervisor is not None
        proc = self.supervisor.child(service, role).proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop_role(self, service: str, role: str) -> None:
        """SIGTERM the role and wait for it (a graceful stop, as a rolling restart does)."""
        assert self.supervisor is not None
        Supervisor._stop_one(self.supervisor.child(service, role), 30.0)

    def log_of(self, service: str, role: str) -> str:
        assert self.supervisor is not None
        return self.supervisor.child(service, role).log_path.read_text(errors="replace")

    def restart(self, service: str, role: str) -> None:
        """Start a killed role again and wait until it is healthy."""
        assert self.supervisor is not None
        self.supervisor._start_one(self.supervisor.child(service, role))

    @staticmethod
    def stop_server(server: str, *, hard: bool) -> None:
        """Stop the local stack's own `server` process: SIGKILL when `hard` (no clean shutdown, as a
        crash), else its normal stop. Every user of the stack loses it: bench/chaos.py only, never the
        tests (they share the servers)."""
        from culture_stack import process, registry, stack
        from culture_stack.server import Context

        ctx = Context.default()
        (srv,) = registry.select([server])
        if not hard:
            stack.down(ctx, [srv])
            return
        pid = srv.pid(ctx)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # the server's process group, as the stack starts it
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            if not process.stop(pid, timeout=30.0):
                raise RuntimeError(f"{server} (pid {pid}) still runs after SIGKILL")
        ctx.pidfile(server).unlink(missing_ok=True)

    @staticmethod
    def start_server(server: str) -> None:
        """Start the local stack's `server` again and wait until it is healthy."""
        from culture_stack import registry, stack
        from culture_stack.server import Context

        stack.up(Context.default(), registry.select([server]))

    # -- checking -----------------------------------------------------------------------------------

    async def check(self, prefix: str, *, within: float, models: tuple[str, ...] = consistency.MODELS,
                    keyspace: str | None = None, graph_prefix: str | None = None,
                    ) -> tuple[list[consistency.Difference], float, str]:
        """Check the workload of `prefix` until it agrees or `within` seconds passed:
        (the differences left, seconds until they agreed (or gave up), the printed report)."""
        started = time.monotonic()
        sources = self.sources(keyspace, graph_prefix)
        while True:
            try:
                write, read = await gather(sources, Scope(username_prefix=prefix), models)
            except Exception:  # a store of the stack restarting (SERVER_RESTARTS): ask again
                if time.monotonic() - started > within:
                    raise
                await asyncio.sleep(0.5)
                continue
            differences = consistency.compare(write, read)
            waited = time.monotonic() - started
            if not differences or waited > within:
                return differences, waited, consistency.report(write, differences, models)
            await asyncio.sleep(0.5)


def drop_keyspace(platform: PlatformSettings, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster((platform.cassandra_contact_points or "").split(","), port=platform.cassandra_port,
                      protocol_version=5,
                      load_balancing_policy=_policy())
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


# -- the workload ------------------------------------------------------------------------------------


class Retrying(Exception):
    """A request that did not succeed within its deadline."""


@dataclasses.dataclass
class Account:
    username: str
    user_id: str = ""
    auth: dict[str, str] = dataclasses.field(default_factory=dict)


class Workload:
    """Registrations, follows and reviews through the gateway (see the module doc); `ops` counts the
    requests that succeeded, so a fault can wait for the workload to make progress. While it runs, a
    reader GETs what it made (profiles, feeds, works, followers) round and round. Every 5xx answer
    is counted by status in `server_errors`; a 500 (a bug by the project's rules: a dependency away
    is 503) is also kept in `internal` with its route and body."""

    def __init__(self, gateway: str, prefix: str, users: int = 4, *, deadline: float = 180.0) -> None:
        self.gateway = gateway
        self.prefix = prefix
        self.accounts = [Account(f"{prefix}u{i}") for i in range(users)]
        self.deadline = deadline
        self.ops = 0
        self.retries = 0
        self.genres = [f"{prefix}-g{k}" for k in range(3)]
        self.works: dict[tuple[int, int], str] = {}  # (genre, 0 or 1) -> work id
        self.server_errors: collections.Counter[int] = collections.Counter()
        self.internal: list[str] = []
        self.reads = 0

    def _observe(self, method: str, url: str, reply: httpx.Response) -> None:
        if reply.status_code >= 500:
            self.server_errors[reply.status_code] += 1
            if reply.status_code == 500 and len(self.internal) < 20:
                self.internal.append(f"{method} {url}: 500 {reply.text[:300]}")

    async def _read_until(self, client: httpx.AsyncClient, done: asyncio.Event) -> None:
        """GET what the workload made so far, one account's reads a round, round and round until `done`
        (statuses only: while a store is away a read may be 503, never 500)."""
        turn = 0
        while not done.is_set():
            ready = [a for a in self.accounts if a.auth]
            if ready:
                a = ready[turn % len(ready)]
                turn += 1
                works = [f"/api/works/{w}" for w in list(self.works.values())[:2]]
                for url in [*works, "/api/me", "/api/profile", "/api/feed",
                            f"/api/users/{a.user_id}/followers", f"/api/users/{a.user_id}/profile"]:
                    if done.is_set():
                        return
                    with contextlib.suppress(httpx.TransportError):
                        self._observe("GET", url, await client.get(url, headers=a.auth))
                        self.reads += 1
            # a pace, not a wait for a condition: the reader must not starve the workload of the 2 cores
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.3)

    async def _call(self, client: httpx.AsyncClient, method: str, url: str, *, ok: tuple[int, ...],
                    retry: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """The request, again and again until its status is in `ok` (5xx, 429, `retry` and transport
        errors are retried; anything else is the workload's bug)."""
        end = time.monotonic() + self.deadline
        while True:
            try:
                reply = await client.request(method, url, **kwargs)
                self._observe(method, url, reply)
                if reply.status_code in ok:
                    self.ops += 1
                    return reply
                if reply.status_code < 500 and reply.status_code != 429 and reply.status_code not in retry:
                    raise AssertionError(f"{method} {url}: {reply.status_code} {reply.text[:300]}")
                why = f"{reply.status_code} {reply.text[:200]}"
            except httpx.TransportError as exc:
                why = repr(exc)
            if time.monotonic() > end:
                raise Retrying(f"{method} {url} did not succeed within {self.deadline:.0f}s: {why}")
            self.retries += 1
            await asyncio.sleep(0.3)

    async def _register(self, client: httpx.AsyncClient, a: Account) -> None:
        body = {"username": a.username, "email": f"{a.username}@example.org",
                "password": "correct horse battery", "display_name": a.username}
        # 409: an earlier attempt went through although its answer was lost
        await self._call(client, "POST", "/api/register", json=body, ok=(201, 409))
        login = await self._call(client, "POST", "/api/login", ok=(200,),
                                 json={"login": a.username, "password": body["password"]})
        a.user_id = login.json()["user"]["user_id"]
        a.auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

    async def _review(self, client: httpx.AsyncClient, a: Account, work: str, rating: int) -> None:
        await self._call(client, "POST", f"/api/works/{work}/reviews", ok=(201, 200), headers=a.auth,
                         json={"rating": rating, "body": f"{a.username} on {work}",
                               "request_id": f"{a.username}-{work}"})

    async def run(self, between: Callable[[str], Awaitable[None]] | None = None) -> None:
        """All three phases; `between(phase)` is awaited after each phase (e.g. to wait for the graph)."""
        async with httpx.AsyncClient(base_url=self.gateway, timeout=15) as client:
            done = asyncio.Event()
            reader = asyncio.ensure_future(self._read_until(client, done))
            try:
                await self._phases(client, between)
            finally:
                done.set()
                await reader

    async def _phases(self, client: httpx.AsyncClient,
                      between: Callable[[str], Awaitable[None]] | None) -> None:
        n = len(self.accounts)
        await asyncio.gather(*(self._register(client, a) for a in self.accounts))
        creator = self.accounts[0]
        for k in range(3):
            for copy in range(2):
                reply = await self._call(client, "POST", "/api/works", ok=(201, 200),
                                         headers=creator.auth,
                                         json={"kind": "book", "title": f"{self.prefix} {k}.{copy}",
                                               "authors": ["Chaos"], "genre_paths": [self.genres[k]],
                                               "request_id": f"{self.prefix}-w{k}.{copy}"})
                self.works[(k, copy)] = reply.json()["work"]["work_id"]
        # phase 1: user i rates a work of genre i and of genre i+1 (5 stars: interested in both)
        await asyncio.gather(*(self._review(client, a, self.works[((i + d) % 3, 0)], 5)
                               for i, a in enumerate(self.accounts) for d in (0, 1)))
        if between is not None:
            await between("rated")
        # phase 2: user i follows users i+1 and i+2 (404 until the graph worker has both users)
        follows = [(a, self.accounts[(i + d) % n]) for i, a in enumerate(self.accounts) for d in (1, 2)
                   if (i + d) % n != i]
        await asyncio.gather(*(self._call(client, "PUT", f"/api/users/{b.user_id}/follow", ok=(201, 200),
                                          retry=(404,), headers=a.auth) for a, b in follows))
        if between is not None:
            await between("followed")
        # phase 3: user i reviews another work of genre i: followers i-1 (interested in genre i)
        # must get a copy; follower i-2 (interested in i-2 and i-1) need not
        await asyncio.gather(*(self._review(client, a, self.works[(i % 3, 1)], 4)
                               for i, a in enumerate(self.accounts)))
        if between is not None:
            await between("reviewed")


async def poisoned(bootstrap: str, run: ChaosRun) -> dict[str, int]:
    """{poison topic: messages} of the run's consumer groups (evidence of a poisoned effect)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        topics = await consumer.topics()
        for group in run.groups.values():
            for topic in (f"{group}.poison", f"{run.run_id}.{group}.poison"):
                if topic not in topics:
                    continue
                tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
                if not tps:
                    tps = [TopicPartition(topic, p) for p in range(3)]
                ends = await consumer.end_offsets(tps)
                begins = await consumer.beginning_offsets(tps)
                out[topic] = sum(ends[tp] - begins[tp] for tp in tps)
        return out
    finally:
        await consumer.stop()


# -- faults during a workload -----------------------------------------------------------------------

#: the bounded matrix (tests): each fault once; bench/chaos.py also kills each worker and relay alone
FAULTS = ("kafka", "relays", "workers", "postgres", "mongo", "cassandra", "neo4j", "redis", "smtp")

#: bench/chaos.py only (they stop the shared servers): fault -> (server, SIGKILL?). Kafka is killed
#: with SIGKILL and started again; the stores are restarted (stopped, then started after the outage)
SERVER_RESTARTS: dict[str, tuple[str, bool]] = {
    "kafka-kill9": ("kafka", True),
    **{f"{store}-restart": (store, False) for store in ("postgres", "mongo", "cassandra", "neo4j", "redis")},
}


def roles_of_fault(fault: str) -> list[tuple[str, str]]:
    """The roles a kill fault kills: 'relays', 'workers', or one 'service-role' (e.g. 'mailer-worker')."""
    if fault == "relays":
        return list(RELAYS)
    if fault == "workers":
        return [(svc, "worker") for svc in WORKERS]
    service, _, role = fault.partition("-")
    return [(service, role)]


@dataclasses.dataclass
class FaultResult:
    fault: str
    differences: list[consistency.Difference]
    outage: float  # seconds the fault lasted (cut to restore, kill to healthy again)
    converge: float  # seconds from the end of the fault until the checker agreed (or gave up)
    requests: int
    retries: int
    report: str
    poison: dict[str, int]
    reads: int = 0
    server_errors: dict[int, int] = dataclasses.field(default_factory=dict)
    internal: list[str] = dataclasses.field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return consistency.summary(self.differences)

    def line(self) -> str:
        c = self.counts
        return (f"{self.fault:<16} outage {self.outage:5.1f}s  converged in {self.converge:5.1f}s  "
                f"lost {c['lost']}  duplicated {c['duplicated']}  unexpected {c['unexpected']}  "
                f"requests {self.requests} (+{self.retries} retried)  reads {self.reads}  "
                f"5xx {dict(sorted(self.server_errors.items())) or 0}  poisoned {sum(self.poison.values())}")


async def run_fault(run: ChaosRun, fault: str, *, users: int = 4, outage: float = 5.0,
                    converge_within: float = 90.0, at_requests: int = 4) -> FaultResult:
    """A fresh workload of `users`; once it made `at_requests` requests, the fault: a server cut for
    `outage` seconds, a server of the stack stopped (SERVER_RESTARTS) and started again after `outage`
    seconds, or roles killed and restarted after `outage` seconds; then the checker, until it agrees or
    `converge_within` seconds passed after the end of the fault (the end: the server or roles healthy
    again)."""
    prefix = f"{fault.replace('-', '')[:6]}{uuid.uuid4().hex[:6]}"
    workload = Workload(run.gateway, prefix, users=users)
    restart = SERVER_RESTARTS.get(fault)
    kills = [] if fault in STORES or fault == "kafka" or restart else roles_of_fault(fault)
    span: list[float] = []

    async def attempts_or_time(start: int, t0: float) -> None:
        # the fault's length (not a wait for something to happen); the workload goes on meanwhile
        await wait_until(lambda: time.monotonic() - t0 >= outage, outage + 5, "the outage to end",
                         interval=0.1)

    async def inject() -> None:
        await wait_until(lambda: workload.ops >= at_requests, 120, f"{at_requests} requests of the workload",
                         interval=0.05)
        t0, start = time.monotonic(), workload.ops + workload.retries
        if restart is not None:
            server, hard = restart
            await asyncio.to_thread(run.stop_server, server, hard=hard)
            try:
                await attempts_or_time(start, t0)
            finally:
                await asyncio.to_thread(run.start_server, server)
        elif kills:
            for service, role in kills:
                await asyncio.to_thread(run.kill, service, role)
            await attempts_or_time(start, t0)
            await asyncio.gather(*(asyncio.to_thread(run.restart, service, role) for service, role in kills))
        else:
            await asyncio.to_thread(run.cut, fault)
            try:
                await attempts_or_time(start, t0)
            finally:
                await asyncio.to_thread(run.restore, fault)
        span.extend([t0, time.monotonic()])

    async def settle(phase: str) -> None:
        if phase == "rated":  # best effort: the final check says what was lost
            with contextlib.suppress(Exception):  # e.g. a store still restarting after 30 s
                await run.check(prefix, within=min(30.0, converge_within), models=("graph",))

    bootstrap = run.platform.kafka_bootstrap or ""
    poison_before = await poisoned(bootstrap, run)
    fault_task = asyncio.ensure_future(inject())
    try:
        await workload.run(settle)
        await fault_task
    finally:
        if not fault_task.done():
            fault_task.cancel()
            with contextlib.suppress(BaseException):
                await fault_task
    differences, _, text = await run.check(prefix, within=converge_within)
    converged = time.monotonic() - span[1]
    poison = {t: n - poison_before.get(t, 0) for t, n in (await poisoned(bootstrap, run)).items()
              if n > poison_before.get(t, 0)}
    return FaultResult(fault, differences, span[1] - span[0], converged, workload.ops, workload.retries,
                       text, poison, workload.reads, dict(workload.server_errors), workload.internal)


def _policy() -> object:
    from cassandra.policies import RoundRobinPolicy

    return RoundRobinPolicy()
