"""What the services that keep their tables in Cassandra (feed, chat) share: the keyspace settings,
the connection, the idempotent migrations and the asyncio bridge of the threaded driver.

A service's store subclasses `KeyspaceStore`: it names its tables (`_tables`), the settings that fix
the data's layout once the keyspace holds data (`_layout`) and prepares its statements (`_prepare`).
`connect` then creates the keyspace and the missing tables, refuses a keyspace created with another
layout, and prepares the statements; `_run` runs one prepared statement without blocking the event
loop. The driver is imported only when a store connects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings

from culture_runtime.startup import until_reachable_blocking

#: the driver leaves Nagle's algorithm on: a request written while the connection's previous one is
#: unacknowledged waits for that ACK (up to the peer's delayed-ACK timer, tens of ms). Off, as every
#: other client here (grpc, redis-py, asyncpg) has it.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class CassandraSettings(BaseSettings):
    """The keyspace's replication and the driver's knobs, under the service's own env prefix (its
    subclass adds `keyspace` and its other settings)."""

    replication_class: str = Field("SimpleStrategy", pattern=r"^(SimpleStrategy|NetworkTopologyStrategy)$",
                                   description="replication strategy of the keyspace (created if missing)")
    replication_factor: int = Field(1, ge=1, le=10, description="replicas per datacenter (3 in production)")
    local_dc: str | None = Field(None, description="Cassandra datacenter the driver prefers (and the one "
                                 "NetworkTopologyStrategy replicates to); unset: the contact points' own")
    protocol_version: int = Field(5, ge=3, le=5, description="CQL native protocol version (5: Cassandra 4+)")
    request_timeout_seconds: float = Field(10.0, gt=0, le=600, description="limit on one Cassandra request")
    connect_timeout_seconds: float = Field(10.0, gt=0, le=600,
                                           description="limit on opening one connection to a node")
    start_timeout_seconds: float = Field(120.0, ge=0, le=3600, description="how long a role keeps trying "
                                         "to reach Cassandra at start (a busy or restarting node) before "
                                         "it exits; 0: one try")


def open_session(make_cluster: Callable[[], Any], settings: CassandraSettings,
                 service: str) -> tuple[Any, Any]:
    """(cluster, session) of `make_cluster()`, tried again with a new cluster (a failed connect shuts
    the driver's down) while no node answers (Cassandra starting, restarting or too busy to finish a
    handshake) until `settings.start_timeout_seconds` have passed; then the last error. Blocking:
    call it from a thread."""
    from cassandra.cluster import NoHostAvailable

    def attempt() -> tuple[Any, Any]:
        cluster = make_cluster()
        try:
            return cluster, cluster.connect()
        except NoHostAvailable:
            cluster.shutdown()  # a failed connect leaves the driver's cluster unusable: a new one next
            raise

    return until_reachable_blocking(f"{service}: Cassandra", attempt, transient=(NoHostAvailable,),
                                    within=settings.start_timeout_seconds,
                                    logger=logging.getLogger(f"culture_{service}"))


def bridge(future: Any) -> asyncio.Future[Any]:
    """An asyncio future of a cassandra-driver ResponseFuture (its first page of rows)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[Any] = loop.create_future()

    def done(rows: Any) -> None:
        loop.call_soon_threadsafe(lambda: out.done() or out.set_result(rows))

    def failed(exc: BaseException) -> None:
        loop.call_soon_threadsafe(lambda: out.done() or out.set_exception(exc))

    future.add_callbacks(done, failed)
    return out


class KeyspaceStore:
    """A service's tables in one keyspace (`settings.keyspace`). `service` names it in errors and logs
(the logger culture_<service>)."""

    service = "cassandra"

    def __init__(self, contact_points: str, port: int, settings: Any) -> None:
        self.contact_points = [h.strip() for h in contact_points.split(",") if h.strip()]
        self.port = port
        self.settings = settings
        self.ks: str = settings.keyspace
        self.cluster: Any = None
        self.session: Any = None
        self._prepared: dict[str, Any] = {}
        self._log = logging.getLogger(f"culture_{self.service}")

    # -- what a service says ---------------------------------------------------------------------

    def _tables(self) -> dict[str, str]:
        """Table name -> CREATE TABLE IF NOT EXISTS statement (besides `meta`, which every store has)."""
        return {}

    def _layout(self) -> dict[str, object]:
        """Setting name -> value that is part of the data's layout: recorded in `meta` when the keyspace
        is new, and a later start with another value is refused (it would hide rows)."""
        return {}

    def _profiles(self) -> dict[str, dict[str, Any]]:
        """Execution profiles besides the default: name -> ExecutionProfile arguments (the load
        balancing policy and the request timeout are added)."""
        return {}

    def _prepare(self) -> None:
        """Prepare the statements into `_prepared`."""

    # -- connection and schema ------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, create the keyspace and tables that are missing, prepare the statements."""
        await asyncio.to_thread(self._connect_sync)

    def _connect_sync(self) -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import (
            DCAwareRoundRobinPolicy,
            ExponentialReconnectionPolicy,
            TokenAwarePolicy,
        )

        s = self.settings
        policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.local_dc))
        profiles = {name: ExecutionProfile(load_balancing_policy=policy,
                                           request_timeout=s.request_timeout_seconds, **kwargs)
                    for name, kwargs in {EXEC_PROFILE_DEFAULT: {}, **self._profiles()}.items()}
        self.cluster, self.session = open_session(
            lambda: Cluster(self.contact_points, port=self.port, protocol_version=s.protocol_version,
                            connect_timeout=s.connect_timeout_seconds,
                            # back within seconds of Cassandra's return (the default waits up to 10 min)
                            reconnection_policy=ExponentialReconnectionPolicy(0.5, 10.0),
                            execution_profiles=profiles, sockopts=NODELAY),
            s, self.service)
        self.session.default_fetch_size = None  # every read here is bounded by a LIMIT or a partition
        self._migrate()
        self._retry_startup(self._prepare)

    def _migrate(self) -> None:
        s = self.settings
        existing = {r.table_name for r in self.session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (self.ks,))}
        if not existing:
            if s.replication_class == "NetworkTopologyStrategy":
                dc = s.local_dc or "datacenter1"
                replication = f"{{'class': 'NetworkTopologyStrategy', '{dc}': {s.replication_factor}}}"
            else:
                replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {s.replication_factor}}}"
            self.session.execute(f"CREATE KEYSPACE IF NOT EXISTS {self.ks} WITH replication = {replication}")
        tables = {"meta": f"CREATE TABLE IF NOT EXISTS {self.ks}.meta (name text PRIMARY KEY, value text)",
                  **self._tables()}
        for name, ddl in tables.items():
            if name not in existing:
                self._log.info("%s: creating table %s.%s", self.service, self.ks, name)
                self.session.execute(ddl, timeout=60)
        prefix = str(s.model_config.get("env_prefix", "")).upper()
        select = f"SELECT value FROM {self.ks}.meta WHERE name = %s"
        insert = f"INSERT INTO {self.ks}.meta (name, value) VALUES (%s, %s) IF NOT EXISTS"
        for name, value in self._layout().items():
            row = self._retry_startup(functools.partial(self.session.execute, select, (name,))).one()
            if row is None:
                # the first role to get here records the layout; roles started at the same moment
                # contend on this lightweight transaction, and a timed-out one is simply tried again
                # (IF NOT EXISTS makes the retry harmless); the SELECT after it sees the winner's value
                self._retry_startup(functools.partial(self.session.execute, insert, (name, str(value))))
                row = self._retry_startup(functools.partial(self.session.execute, select, (name,))).one()
            if row is not None and row.value != str(value):
                raise SystemExit(f"{self.service}: keyspace {self.ks} was created with {name}={row.value}, "
                                 f"{prefix}{name.upper()} says {value}; they must agree")

    @staticmethod
    def _retry_startup(call: Callable[[], Any], within: float = 60.0) -> Any:
        """`call()` at start-up, while other roles started at the same time create the same tables
        and record the same layout: Cassandra lists a new table in system_schema a little before it
        accepts statements on it ("table ... does not exist", "unconfigured table"), and concurrent
        lightweight transactions on one row time out in contention ("CAS operation timed out"), as a
        node busy with schema changes may time a request out; those answers are tried again for
        `within` seconds (the start-up statements are idempotent)."""
        from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout

        deadline = time.monotonic() + within
        delay = 0.2
        while True:
            try:
                return call()
            except InvalidRequest as exc:
                if not any(w in str(exc) for w in ("does not exist", "unconfigured table")) \
                        or time.monotonic() > deadline:
                    raise
            except (WriteTimeout, ReadTimeout, Unavailable, OperationTimedOut) as exc:
                if time.monotonic() > deadline:
                    raise
                logging.getLogger("culture_cassandra").warning("start-up statement timed out (%s); "
                                                               "trying again", exc)
            time.sleep(delay * random.uniform(0.5, 1.5))  # contenders spread out
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.shutdown)
            self.cluster = self.session = None

    async def _run(self, name: str, params: Sequence[Any], profile: str | None = None) -> list[Any]:
        """One prepared statement's rows (as the default profile makes them, or `profile`)."""
        if profile is None:
            future = self.session.execute_async(self._prepared[name], params)
        else:
            future = self.session.execute_async(self._prepared[name], params, execution_profile=profile)
        return list(await bridge(future) or [])
