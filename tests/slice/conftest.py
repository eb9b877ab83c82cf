"""The registration slice as real processes: `culture serve` children on free ports.

One run per test session: its own PostgreSQL schema for identity (so its outbox is relayed only by
this run's relay), its own consumer groups positioned at the current end of every event topic (so
workers do not replay other runs' history), and the identity relay talking to Kafka through a
KafkaProxy the tests can close (Kafka itself is shared and stays up).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from culture_contracts.topics import ALL_TOPICS
from culture_events.testing.kafka_proxy import KafkaProxy
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.dev import SLICE, Supervisor, available_roles, free_port, position_groups_at_end
from culture_stack.server import Context

#: failed logins per login+IP before 429, for this run (small: the test makes them all)
MAX_LOGIN_FAILURES = 3
#: registrations per client address before 429, for this run; each test comes from its own address
MAX_REGISTRATIONS_PER_ADDRESS = 10
#: the key the run's gateway signs client addresses with (and identity verifies them with)
CLIENT_ADDRESS_KEY = secrets.token_urlsafe(32)
WORKERS = ("catalog", "mailer", "notifier", "graph", "feed")
#: services of other teams: one that fails to start is left out (its tests fail, the others run)
OPTIONAL = (*WORKERS, "chat")


@dataclasses.dataclass
class SliceRun:
    """What a test needs to talk to the running slice."""

    run_id: str
    schema: str
    groups: dict[str, str]
    supervisor: Supervisor
    proxy: KafkaProxy
    present: list[tuple[str, str]]
    platform: PlatformSettings
    ctx: Context

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.supervisor.child('gateway', 'api').port}"

    def has(self, *services: str) -> bool:
        """Whether this build runs every role of these services."""
        return all(any(s == svc for s, _ in self.present) for svc in services)

    @property
    def catalog_db(self) -> str:
        return f"catalog_{self.run_id}"

    def require(self, *services: str) -> None:
        """Skip unless these services are in this build; fail if one of their roles did not start."""
        failed = {f"{s} {r}": why for (s, r), why in self.supervisor.failed.items() if s in services}
        if failed:
            pytest.fail("slice roles failed to start: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        missing = [s for s in services if not self.has(s)]
        if missing:
            pytest.skip(f"needs the {', '.join(missing)} service(s), not in this build yet")

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.platform.postgres_dsn, server_settings={"search_path": self.schema})


def _drop_keyspace(platform: PlatformSettings, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster((platform.cassandra_contact_points or "").split(","), port=platform.cassandra_port,
                      protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def slice_servers(stack_ctx: Context) -> Context:
    """The servers the slice needs (not the whole stack)."""
    known = {s.name for s in registry.all_servers()}
    wanted = [n for n in ("postgres", "redis", "kafka", "mongo", "neo4j", "cassandra", "smtp") if n in known]
    stack.up(stack_ctx, registry.select(wanted))
    return stack_ctx


@pytest.fixture(scope="session")
async def slice_run(slice_servers: Context, tmp_path_factory: pytest.TempPathFactory,
                    issued_names: set[str]) -> AsyncIterator[SliceRun]:
    """Start every role of the slice this build has; stop them (reverse order) after the session."""
    platform = PlatformSettings()
    run_id = "s" + uuid.uuid4().hex[:10]
    issued_names.add(run_id)
    schema = f"slice_{run_id}"
    present, _missing = available_roles(SLICE)
    groups = {svc: f"{svc}-{run_id}" for svc in WORKERS}
    await position_groups_at_end(platform.kafka_bootstrap, list(groups.values()), ALL_TOPICS)
    host, _, port = platform.kafka_bootstrap.split(",")[0].rpartition(":")
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    env = {
        **os.environ,
        "CULTURE_IDENTITY_DB_SCHEMA": schema,
        "CULTURE_IDENTITY_LOGIN_MAX_FAILURES": str(MAX_LOGIN_FAILURES),
        "CULTURE_IDENTITY_REGISTER_MAX_PER_ADDRESS": str(MAX_REGISTRATIONS_PER_ADDRESS),
        # this run's limit counters only: concurrent runs on the shared Redis (and the tests that
        # register without an address of their own) do not use up each other's registrations
        "CULTURE_IDENTITY_LIMITS_PREFIX": f"culture:identity:{run_id}:",
        # the gateway signs the client address, identity verifies it (a key of this run only)
        "CULTURE_CLIENT_ADDRESS_KEY": CLIENT_ADDRESS_KEY,
        # the test client stands for the one proxy in front of the gateway: X-Forwarded-For's last
        # entry is the client (the `http` fixture gives each test its own address)
        "CULTURE_GATEWAY_TRUST_FORWARDED_FOR": "true",
        "CULTURE_GATEWAY_TRUSTED_PROXIES": "1",
        "CULTURE_IDENTITY_RELAY_POLL_SECONDS": "0.5",
        "CULTURE_GATEWAY_HEALTH_INTERVAL_SECONDS": "0.5",
        "CULTURE_CATALOG_DATABASE": f"catalog_{run_id}",  # its profiles and outbox: this run's only
        "CULTURE_CATALOG_RELAY_POLL_SECONDS": "0.5",
        "CULTURE_CATALOG_CACHE_PREFIX": f"{run_id}:",
        "CULTURE_GRAPH_OUTBOX_LABEL": f"GraphOutbox_{run_id}",  # this run's follows only
        "CULTURE_GRAPH_RELAY_POLL_SECONDS": "0.3",
        "CULTURE_FEED_KEYSPACE": f"feed_{run_id}",  # this run's timelines only
        "CULTURE_CHAT_KEYSPACE": f"chat_{run_id}",  # this run's conversations only
        "CULTURE_CHAT_REDIS_PREFIX": f"{run_id}:chat:",
        "CULTURE_GATEWAY_CHAT_PREFIX": f"{run_id}:chat:",
        **{f"CULTURE_{svc.upper()}_CONSUMER_GROUP": group for svc, group in groups.items()},
    }
    supervisor = Supervisor(
        present, ports={key: free_port() for key in present}, log_dir=Path(tmp_path_factory.mktemp("slice")),
        env=env, role_env={("identity", "relay"): {"CULTURE_KAFKA_BOOTSTRAP": proxy.bootstrap}},
        log_prefix=run_id, start_timeout=120)
    try:
        # blocking waits: in a thread, so the proxy (served by this loop) keeps working meanwhile
        optional = [key for key in present if key[0] in OPTIONAL]  # another team's services
        await asyncio.to_thread(supervisor.start, optional)
        yield SliceRun(run_id, schema, groups, supervisor, proxy, present, platform, slice_servers)
    finally:
        await asyncio.to_thread(supervisor.stop)
        await proxy.close()
        with contextlib.suppress(Exception):
            import pymongo

            with pymongo.MongoClient(platform.mongo_uri, serverSelectionTimeoutMS=5000) as mongo:
                mongo.drop_database(f"catalog_{run_id}")
        with contextlib.suppress(Exception):
            from culture_events.outbox.neo4j import Neo4jOutbox, driver_from_uri

            driver = driver_from_uri(platform.neo4j_uri or "")
            try:
                await Neo4jOutbox(f"GraphOutbox_{run_id}").drop(driver)
            finally:
                await driver.close()
        for keyspace in (f"feed_{run_id}", f"chat_{run_id}"):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(_drop_keyspace, platform, keyspace)
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(platform.postgres_dsn)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


def client_address() -> str:
    """A client address no other test uses (so per-address limits count one test's requests)."""
    return str(ipaddress.IPv4Address(0x0A000000 + secrets.randbelow(1 << 24)))  # in 10.0.0.0/8


@pytest.fixture
async def http(slice_run: SliceRun) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the run's gateway, coming from an address of its own."""
    async with httpx.AsyncClient(base_url=slice_run.gateway, timeout=30,
                                 headers={"X-Forwarded-For": client_address()}) as client:
        yield client


def new_account(unique: str) -> dict[str, Any]:
    """Registration fields no other test uses."""
    return {"username": unique, "email": f"{unique}@example.org", "password": "correct horse battery",
            "display_name": f"Reader {unique}"}


