"""Benchmark of the registration slice through the gateway, loopback only, bounded in time.

Reports, in one run:
  * registrations per second through `POST /api/register` with --clients concurrent clients
    (each a keep-alive HTTP connection looping for --seconds), and the request latency p50/p99;
  * register-to-profile latency p50/p99: from the 201 reaching the client to the matching
    `catalog.profile-created` event being consumed by this benchmark;
  * for reference, the machine's raw PostgreSQL rate: single-row INSERT transactions per second
    with the same number of connections, and rows per second with a batched COPY.

By default it starts its own slice (`culture serve` children on free ports, its own identity schema
and catalog database, consumer groups at the topic ends), so it does not disturb a running
`make up`; --gateway URL measures a slice that is already running instead.
Run: `.venv/bin/python bench/registration.py --help`. The whole run stays under two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from culture.events.v1 import catalog_events_pb2
from culture_contracts.topics import ALL_TOPICS, topic_of
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.dev import (
    SLICE,
    Supervisor,
    available_roles,
    free_port,
    position_groups_at_end,
    topic_ends,
)
from culture_stack.endpoints import platform_settings, with_platform_env
from culture_stack.server import Context, say

PROFILE_CREATED = topic_of(catalog_events_pb2.ProfileCreated)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class ProfileWatcher:
    """Consumes catalog.profile-created from the current end; records when each user's arrived."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        ends = await topic_ends(self.bootstrap, [PROFILE_CREATED])  # the catalog relay created it
        if not ends:
            raise SystemExit(f"topic {PROFILE_CREATED} does not exist: is the catalog relay running?")
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self._consumer.start()
        self._consumer.assign(list(ends))
        for tp, offset in ends.items():  # from the current end: only this run's profiles
            self._consumer.seek(tp, offset)
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    event = catalog_events_pb2.ProfileCreated.FromString(record.value)
                    self.seen.setdefault(event.user_id, now)

    async def wait_for(self, users: set[str], within: float) -> None:
        """Return once every user's profile was seen, or after `within` seconds."""
        deadline = time.monotonic() + within
        while not users <= self.seen.keys() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a dict
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


async def load(gateway: str, clients: int, seconds: float,
               run: str) -> tuple[dict[str, float], list[float], int]:
    """Register users from `clients` concurrent loops for `seconds`.

    Returns ({user_id: monotonic time the 201 arrived}, request latencies, failed requests)."""
    accepted: dict[str, float] = {}
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as http:

        async def client(n: int) -> None:
            nonlocal failures
            i = 0
            while time.monotonic() < deadline:
                name = f"b{run}{n:02d}{i:05d}"
                i += 1
                started = time.monotonic()
                try:
                    reply = await http.post("/api/register", json={
                        "username": name, "email": f"{name}@bench.example.org",
                        "password": "benchmark-password"})
                except httpx.HTTPError:
                    failures += 1
                    continue
                done = time.monotonic()
                if reply.status_code == 201:
                    accepted[reply.json()["user"]["user_id"]] = done
                    latencies.append(done - started)
                else:
                    failures += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
    return accepted, latencies, failures


async def postgres_reference(dsn: str, clients: int, seconds: float) -> tuple[float, float]:
    """(single-row INSERT commits/s with `clients` connections, rows/s with one batched COPY)."""
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, username text UNIQUE, email text UNIQUE,"
                        " created_at timestamptz NOT NULL DEFAULT now())")
    try:
        pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
        count = 0
        deadline = time.monotonic() + seconds

        async def writer() -> None:
            nonlocal count
            async with pool.acquire() as conn:
                while time.monotonic() < deadline:
                    name = uuid.uuid4().hex
                    await conn.execute(f"INSERT INTO {table} (id, username, email) VALUES ($1, $2, $3)",
                                       uuid.uuid4(), name, f"{name}@x.org")
                    count += 1

        started = time.monotonic()
        await asyncio.gather(*(writer() for _ in range(clients)))
        single = count / (time.monotonic() - started)
        await pool.close()
        rows = [(uuid.uuid4(), f"c{n}", f"c{n}@x.org") for n in range(50_000)]
        started = time.monotonic()
        await admin.copy_records_to_table(table, records=rows, columns=["id", "username", "email"])
        batched = len(rows) / (time.monotonic() - started)
        return single, batched
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()


async def start_slice(run: str, platform: PlatformSettings) -> tuple[Supervisor, dict[str, str]]:
    """This run's own slice on free ports (own schema and catalog database, groups at the ends)."""
    present, missing = available_roles(SLICE)
    if missing:
        say("note: not in this build, not started: " + ", ".join(missing))
    groups = {svc: f"{svc}-bench-{run}" for svc in ("catalog", "mailer", "notifier")}
    await position_groups_at_end(platform.kafka_bootstrap, list(groups.values()), ALL_TOPICS)
    env = {**with_platform_env(dict(os.environ)), "CULTURE_IDENTITY_DB_SCHEMA": f"bench_{run}",
           "CULTURE_CATALOG_DATABASE": f"catalog_bench_{run}",
           "CULTURE_IDENTITY_POOL_MAX_SIZE": "20",
           **{f"CULTURE_{s.upper()}_CONSUMER_GROUP": g for s, g in groups.items()}}
    supervisor = Supervisor(present, ports={k: free_port() for k in present},
                            log_dir=Path(tempfile.mkdtemp(prefix="culture-bench-")), env=env,
                            log_prefix=f"bench-{run}", start_timeout=90)
    await asyncio.to_thread(supervisor.start)
    return supervisor, groups


async def cleanup(run: str, platform: PlatformSettings) -> None:
    """Drop this run's schema and catalog database."""
    conn = await asyncpg.connect(platform.postgres_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "bench_{run}" CASCADE')
    finally:
        await conn.close()
    import pymongo

    with pymongo.MongoClient(platform.mongo_uri, serverSelectionTimeoutMS=5000) as mongo:
        mongo.drop_database(f"catalog_bench_{run}")


async def main_async(args: argparse.Namespace) -> int:
    platform = platform_settings()
    run = uuid.uuid4().hex[:6]
    supervisor: Supervisor | None = None
    t0 = time.monotonic()
    try:
        if args.gateway:
            gateway = args.gateway.rstrip("/")
        else:
            say("==> servers: postgres, redis, kafka, mongo, smtp")
            known = {s.name for s in registry.all_servers()}
            await asyncio.to_thread(stack.up, Context.default(), registry.select(
                [n for n in ("postgres", "redis", "kafka", "mongo", "smtp") if n in known]))
            say("==> starting the slice on free ports")
            supervisor, _ = await start_slice(run, platform)
            gateway = f"http://127.0.0.1:{supervisor.child('gateway', 'api').port}"
        watcher = ProfileWatcher(platform.kafka_bootstrap)
        await watcher.start()
        say(f"==> load: {args.clients} clients for {args.seconds:g}s against {gateway}")
        started = time.monotonic()
        accepted, latencies, failures = await load(gateway, args.clients, args.seconds, run)
        elapsed = time.monotonic() - started
        say(f"==> waiting up to {args.drain:g}s for the profiles of {len(accepted)} registrations")
        await watcher.wait_for(set(accepted), args.drain)
        await watcher.stop()
        to_profile = [watcher.seen[u] - t for u, t in accepted.items() if u in watcher.seen]
        say(f"==> raw PostgreSQL reference ({args.clients} connections, {args.pg_seconds:g}s)")
        single, batched = await postgres_reference(platform.postgres_dsn, args.clients, args.pg_seconds)
    finally:
        if supervisor is not None:
            await asyncio.to_thread(supervisor.stop)
            await cleanup(run, platform)
    print()
    print(f"registration slice benchmark ({os.cpu_count()} CPUs, loopback, {args.clients} clients)")
    print(f"  registrations accepted      {len(accepted):>8}   failed {failures}")
    print(f"  registrations per second    {len(accepted) / elapsed:>8.1f}")
    print(f"  request latency p50 / p99   {percentile(latencies, 50) * 1000:>8.1f} / "
          f"{percentile(latencies, 99) * 1000:.1f} ms")
    print(f"  register -> profile-created {percentile(to_profile, 50) * 1000:>8.1f} / "
          f"{percentile(to_profile, 99) * 1000:.1f} ms (p50 / p99; {len(to_profile)}/{len(accepted)} seen)")
    if to_profile:
        print(f"  register -> profile mean    {statistics.fmean(to_profile) * 1000:>8.1f} ms")
    print(f"  PostgreSQL single-row INSERT commits/s  {single:>8.0f}")
    print(f"  PostgreSQL COPY rows/s                  {batched:>8.0f}")
    print(f"  (whole run {time.monotonic() - t0:.0f}s)")
    return 0 if accepted and len(to_profile) == len(accepted) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load phase (default 20)")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="how long to wait for the last profiles after the load (default 30)")
    parser.add_argument("--pg-seconds", type=float, default=5.0,
                        help="length of the raw PostgreSQL run (default 5)")
    parser.add_argument("--gateway", help="measure a running slice at this URL instead of starting one")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 60 or not 0 < args.drain <= 60:
        parser.error("--clients 1-256; --seconds and --drain at most 60 (the run stays under two minutes)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
