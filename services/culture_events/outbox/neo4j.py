"""The Neo4j outbox (neo4j async driver): nodes written in the caller's transaction, relayed by lease.

Writing::

    outbox = Neo4jOutbox("GraphOutbox")
    await outbox.ensure_schema(driver)                    # once, at start-up (idempotent)
    async def follow(tx):
        await tx.run("MATCH (a:User {id: $a}), (b:User {id: $b}) MERGE (a)-[:FOLLOWS]->(b)", ...)
        await outbox.publisher(tx).publish("graph.follow-created", msg)
    async with driver.session(database="neo4j") as session:
        await session.execute_write(follow)

Relaying: `Relay(Neo4jStore(uri, "GraphOutbox"), lambda: relay_publisher(brokers, "relay"))`, or
`culture events relay --store neo4j --neo4j-uri bolt://user:pw@host:7687 --label GraphOutbox`.

Each entry is a node labelled `<label>` (id, topic, key, seq, message_id, metadata as JSON, payload
bytes, lease, lease_until in epoch milliseconds, and `at`/`ord`: the server time of the write and
the position in its batch, the order in which relays pick candidates).

Order per key: each keyed write also increments a per-key counter node (`<label>Seq {key}`) in the
same transaction. Cypher takes the counter's write lock before reading it (the right-hand side of
the SET depends on the property), so two transactions writing one key serialise on it and seq order
is commit order.

Claims: Neo4j has neither SKIP LOCKED nor a compare-and-set on a matched set (under read committed
a MATCH ... WHERE followed by SET does not re-check the predicate after waiting for a lock). So a
claim first writes a lock node (`<label>Lock`), which serialises the claims of every relay; its
later statements then see every other claim as committed, and stamp the free candidates with the
relay's token and a lease expiry. A claim lasts milliseconds; publishing happens outside it. A relay
that dies leaves its lease to expire (`lease` seconds), then another takes over; the lease must
outlast a publish attempt (the relay keeps it alive while a publish waits).

Wake-ups: Neo4j Community has no change feed, so the relay polls (`poll_interval`, an index seek).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

from neo4j import AsyncDriver, AsyncGraphDatabase
from neo4j.exceptions import ClientError, Neo4jError, ServiceUnavailable

from culture_events.errors import EventsError
from culture_events.message import Message
from culture_events.outbox.records import Entry, decode_metadata, encode_metadata, prepare, publishable

_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def driver_from_uri(uri: str, **options: Any) -> AsyncDriver:
    """An async driver for `bolt://user:password@host:port` (credentials taken out of the URI, the
    form the operator's connection Secrets and CULTURE_NEO4J_URI use)."""
    parts = urllib.parse.urlsplit(uri)
    auth = None
    if parts.username is not None:
        auth = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        uri = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    # the server's informational notifications ("constraint already exists" at every start) are noise
    options.setdefault("notifications_min_severity", "WARNING")
    return AsyncGraphDatabase.driver(uri, auth=auth, **options)


def redact(uri: str) -> str:
    """The URI without its password (for messages)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)


def _now_ms() -> int:
    return int(time.time() * 1000)


_SCHEMA_NAME = re.compile(r"^CREATE (?:CONSTRAINT|INDEX) (\w+) IF NOT EXISTS")


async def create_schema(driver: AsyncDriver, statements: list[str], database: str,
                        within: float = 120.0) -> None:
    """Run idempotent schema statements (`CREATE CONSTRAINT|INDEX <name> IF NOT EXISTS ...`),
    tolerating another process creating the same rule at the same moment, then wait until those
    indexes (only these: others may be populating or being dropped) are online."""
    for stmt in statements:
        for attempt in range(10):
            try:
                await driver.execute_query(stmt, database_=database)
                break
            except ClientError as exc:
                if "AlreadyExists" in (exc.code or ""):  # an equivalent rule, made by someone else
                    break
                raise
            except Neo4jError as exc:  # a concurrent schema change: transient, try again
                if attempt == 9 or not exc.is_retryable():
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
    names = [m.group(1) for stmt in statements if (m := _SCHEMA_NAME.match(stmt))]
    deadline = time.monotonic() + within
    while True:
        records, _, _ = await driver.execute_query(
            "SHOW INDEXES YIELD name, state WHERE name IN $names RETURN name, state", names=names,
            database_=database)
        states = {r["name"]: r["state"] for r in records}
        failed = [n for n, s in states.items() if s == "FAILED"]
        if failed:
            raise EventsError(f"Neo4j indexes {failed} FAILED to populate; see the server's log")
        if all(states.get(n) == "ONLINE" for n in names):
            return
        if time.monotonic() > deadline:
            raise EventsError(f"Neo4j indexes not online after {within:.0f}s: "
                              f"{ {n: states.get(n, 'missing') for n in names} }")
        await asyncio.sleep(0.1)


class Neo4jOutbox:
    """The outbox of one Neo4j database: its node label and the Cypher that reads and writes it."""

    def __init__(self, label: str = "CultureOutbox", database: str = "neo4j") -> None:
        if not _LABEL.match(label):
            raise ValueError(f"outbox label {label!r} must start with a letter and hold only letters, "
                             "digits and underscores (at most 63)")
        self.label = label
        self.database = database
        self.seq_label = f"{label}Seq"
        self.lock_label = f"{label}Lock"
        e, s = f"`{label}`", f"`{self.seq_label}`"
        self.cypher_bump = (f"UNWIND $keys AS k MERGE (c:{s} {{key: k.key}}) "
                            "SET c.seq = coalesce(c.seq, 0) + k.n RETURN c.key AS key, c.seq AS seq")
        self.cypher_insert = (f"UNWIND $rows AS r CREATE (e:{e}) SET e = r, e.at = timestamp(), "
                              "e.lease_until = 0")

    def schema_cypher(self) -> list[str]:
        """The constraints and indexes of the outbox (idempotent statements)."""
        e, s, lk, n = self.label, self.seq_label, self.lock_label, self.label.lower()
        return [
            f"CREATE CONSTRAINT {n}_id IF NOT EXISTS FOR (e:`{e}`) REQUIRE e.id IS UNIQUE",
            f"CREATE INDEX {n}_lease_until IF NOT EXISTS FOR (e:`{e}`) ON (e.lease_until)",
            f"CREATE INDEX {n}_at IF NOT EXISTS FOR (e:`{e}`) ON (e.at)",
            f"CREATE INDEX {n}_lease IF NOT EXISTS FOR (e:`{e}`) ON (e.lease)",
            f"CREATE INDEX {n}_key_seq IF NOT EXISTS FOR (e:`{e}`) ON (e.key, e.seq)",
            f"CREATE INDEX {n}_failing IF NOT EXISTS FOR (e:`{e}`) ON (e.failing)",
            f"CREATE CONSTRAINT {n}_seq_key IF NOT EXISTS FOR (c:`{s}`) REQUIRE c.key IS UNIQUE",
            f"CREATE CONSTRAINT {n}_lock_name IF NOT EXISTS FOR (l:`{lk}`) REQUIRE l.name IS UNIQUE",
        ]

    def schema_names(self) -> list[str]:
        """Names of the constraints and indexes `schema_cypher` creates (to drop them in tests)."""
        n = self.label.lower()
        return [f"{n}_id", f"{n}_lease_until", f"{n}_at", f"{n}_lease", f"{n}_key_seq", f"{n}_seq_key",
                f"{n}_lock_name", f"{n}_failing"]

    async def ensure_schema(self, driver: AsyncDriver) -> None:
        """Create the constraints and indexes if missing; safe from many processes at once."""
        await create_schema(driver, self.schema_cypher(), self.database)

    async def drop(self, driver: AsyncDriver) -> None:
        """Delete the outbox's entries, counters, lock and schema (test runs, an uninstall)."""
        for label in (self.label, self.seq_label, self.lock_label):
            await driver.execute_query(f"MATCH (n:`{label}`) DETACH DELETE n", database_=self.database)
        for name in self.schema_names():
            await driver.execute_query(f"DROP CONSTRAINT {name} IF EXISTS", database_=self.database)
            await driver.execute_query(f"DROP INDEX {name} IF EXISTS", database_=self.database)

    def publisher(self, tx: Any) -> Neo4jOutboxPublisher:
        """A publisher writing into `tx`, the caller's open transaction (managed or explicit)."""
        return Neo4jOutboxPublisher(tx, self)

    async def write(self, tx: Any, topic: str, messages: list[Message]) -> None:
        """Create prepared messages as entries in `tx`, numbering them per key."""
        counts: dict[str, int] = {}
        for m in messages:
            if m.key is not None:
                counts[m.key] = counts.get(m.key, 0) + 1
        next_seq: dict[str, int] = {}
        if counts:
            # keys in a fixed order: two transactions locking the same counters cannot deadlock
            result = await tx.run(self.cypher_bump, keys=[{"key": k, "n": counts[k]} for k in sorted(counts)])
            async for rec in result:
                next_seq[rec["key"]] = int(rec["seq"]) - counts[rec["key"]] + 1
        rows = []
        for i, m in enumerate(messages):
            row: dict[str, Any] = {"id": uuid.uuid4().hex, "topic": topic, "message_id": m.id,
                                   "metadata": encode_metadata(m), "payload": bytes(m.payload), "ord": i}
            if m.key is not None:
                row["key"] = m.key
                row["seq"] = next_seq[m.key]
                next_seq[m.key] += 1
            rows.append(row)
        await (await tx.run(self.cypher_insert, rows=rows)).consume()


class Neo4jOutboxPublisher:
    """A Publisher that writes into the caller's open Neo4j transaction.

    Publishing without an open transaction (a session, a closed transaction) is refused: that would
    be a dual write.
    """

    def __init__(self, tx: Any, outbox: Neo4jOutbox) -> None:
        self.tx = tx
        self.outbox = outbox

    async def publish(self, topic: str, *messages: Message) -> None:
        """Stamp the messages (correlation id, event id, occurred_at) and create them."""
        if not messages:
            return
        from neo4j import AsyncManagedTransaction, AsyncTransaction

        if not isinstance(self.tx, AsyncManagedTransaction | AsyncTransaction) or self.tx._closed():
            raise EventsError("Neo4jOutboxPublisher.publish needs the caller's open transaction: call it "
                              "inside `session.execute_write(...)` or an explicit transaction")
        await self.outbox.write(self.tx, topic, [prepare(m) for m in messages])

    async def close(self) -> None:
        """Nothing to close: the transaction is the caller's."""


#: lease_until (epoch ms) of a dead entry: never free again
_NEVER_MS = 253_402_300_799_000  # 9999-12-31


class _Neo4jClaim:
    def __init__(self, driver: AsyncDriver, outbox: Neo4jOutbox, lease: float, max_attempts: int = 8,
                 max_backoff: float = 60.0) -> None:
        self.driver = driver
        self.outbox = outbox
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.lease_ms = int(lease * 1000)
        self.token = uuid.uuid4().hex
        self.entries: list[Entry] = []
        self.held = 0

    async def _lease(self, tx: Any, limit: int) -> tuple[list[dict[str, Any]], list[tuple[str, str, int]]]:
        e, lk = f"`{self.outbox.label}`", f"`{self.outbox.lock_label}`"
        # 1. the claim lock: every later statement of this transaction sees other claims committed
        await (await tx.run(f"MERGE (l:{lk} {{name: 'claim'}}) SET l.at = timestamp()")).consume()
        now = _now_ms()
        # keys with a refused entry (backing off: no lease, lease_until ahead; or dead): their later
        # entries would fill every batch, so only the refused entry itself is a candidate
        result = await tx.run(f"MATCH (e:{e}) WHERE e.failing = true AND e.key IS NOT NULL "
                              "RETURN DISTINCT e.key AS key")
        failing = [r["key"] async for r in result]
        # the oldest free entries: the `at` index in order, stopping after $limit (no sort of a backlog;
        # entries of one write share `at`, and their order within a key is `seq` anyway)
        result = await tx.run(
            f"MATCH (e:{e}) USING INDEX e:{e}(at) WHERE e.at >= 0 AND e.lease_until < $now "
            "AND (e.key IS NULL OR e.failing = true OR NOT e.key IN $failing) "
            "RETURN e.id AS id, e.key AS key, e.seq AS seq ORDER BY e.at LIMIT $limit",
            now=now, limit=limit, failing=failing)
        candidates = [dict(r) async for r in result]
        if not candidates:
            return [], []
        top: dict[str, int] = {}
        for c in candidates:
            if c["key"] is not None:
                top[c["key"]] = max(top.get(c["key"], 0), c["seq"])
        # also lease the older entries of those keys, or a batch could wait forever behind one
        same_keys: list[dict[str, Any]] = []
        if top:
            result = await tx.run(
                f"UNWIND $tops AS t MATCH (e:{e} {{key: t.key}}) WHERE e.seq <= t.seq "
                "RETURN e.id AS id, e.key AS key, e.seq AS seq, e.lease_until AS lease_until",
                tops=[{"key": k, "seq": s} for k, s in top.items()])
            same_keys = [dict(r) async for r in result]
        ids = {c["id"] for c in candidates} | {d["id"] for d in same_keys if d["lease_until"] < now}
        result = await tx.run(
            f"UNWIND $ids AS id MATCH (e:{e} {{id: id}}) WHERE e.lease_until < $now "
            "SET e.lease = $token, e.lease_until = $until "
            "RETURN e.id AS id, e.topic AS topic, e.key AS key, e.seq AS seq, e.message_id AS message_id, "
            "e.metadata AS metadata, e.payload AS payload",
            ids=sorted(ids), now=now, token=self.token, until=now + self.lease_ms)
        mine = [dict(r) async for r in result]
        pending = sorted(((d["id"], d["key"], d["seq"]) for d in same_keys), key=lambda t: (t[1], t[2]))
        return mine, pending

    async def load(self, limit: int) -> None:
        async with self.driver.session(database=self.outbox.database) as session:
            mine, pending = await session.execute_write(self._lease, limit)
        self.held = len(mine)
        mine.sort(key=lambda d: (d["key"] is not None, d["key"] or "", d["seq"] or 0, d["id"]))
        entries = [Entry(d["id"], d["topic"], Message(bytes(d["payload"]), decode_metadata(d["metadata"]),
                                                      id=d["message_id"])) for d in mine]
        ok = set(publishable([(x.ref, x.key) for x in entries], [(r, k) for r, k, _ in pending]))
        self.entries = [x for x in entries if x.ref in ok]

    async def _run(self, cypher: str, **params: Any) -> None:
        await self.driver.execute_query(cypher, params, database_=self.outbox.database)

    async def done(self, entries: list[Entry] | None = None) -> None:
        entries = self.entries if entries is None else entries
        await self._run(f"UNWIND $ids AS id MATCH (e:`{self.outbox.label}` {{id: id}}) "
                        "WHERE e.lease = $token DETACH DELETE e",
                        ids=[x.ref for x in entries], token=self.token)

    async def failed(self, entry: Entry, error: str) -> tuple[bool, int]:
        """Count a refused publish of `entry`: it backs off (1 s doubling up to max_backoff), or is
        dead after max_attempts. (dead now?, attempts)"""
        records, _, _ = await self.driver.execute_query(
            f"MATCH (e:`{self.outbox.label}` {{id: $id}}) WHERE e.lease = $token "
            "SET e.attempts = coalesce(e.attempts, 0) + 1, e.last_error = $error, e.failing = true, "
            "e.lease = null RETURN e.attempts AS attempts",
            {"id": entry.ref, "token": self.token, "error": error[:2000]}, database_=self.outbox.database)
        if not records:
            return False, 0
        attempts = int(records[0]["attempts"])
        dead = attempts >= self.max_attempts
        now = _now_ms()
        until = _NEVER_MS if dead else now + int(1000 * min(self.max_backoff, 2.0 ** (attempts - 1)))
        await self._run(f"MATCH (e:`{self.outbox.label}` {{id: $id}}) SET e.lease_until = $until, "
                        "e.dead_at = $dead_at", id=entry.ref, until=until, dead_at=now if dead else None)
        return dead, attempts

    async def keep_alive(self) -> None:
        """Push the lease's expiry forward while a publish waits (so no other relay takes over)."""
        await self._run(f"MATCH (e:`{self.outbox.label}` {{lease: $token}}) SET e.lease_until = $until",
                        token=self.token, until=_now_ms() + self.lease_ms)

    async def release(self) -> None:
        """Give back whatever this claim still holds (unpublished entries)."""
        await self._run(f"MATCH (e:`{self.outbox.label}` {{lease: $token}}) "
                        "SET e.lease = null, e.lease_until = 0", token=self.token)


class Neo4jStore:
    """The relay's view of a Neo4j outbox: serialised lease claims, polling for new entries."""

    def __init__(self, uri: str, label: str = "CultureOutbox", *, database: str = "neo4j",
                 lease: float = 60.0, create_schema: bool = True, max_attempts: int = 8,
                 max_backoff: float = 60.0) -> None:
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.uri = uri
        self.outbox = Neo4jOutbox(label, database)
        self.lease = lease
        self.create_schema = create_schema
        self.describe = f"neo4j label :{label} in database {database}"
        self.driver: AsyncDriver | None = None

    async def open(self) -> None:
        """Connect and create the constraints and indexes if asked."""
        self.driver = driver_from_uri(self.uri)
        try:
            await self.driver.verify_connectivity()
            if self.create_schema:
                await self.outbox.ensure_schema(self.driver)
        except (Neo4jError, ServiceUnavailable, OSError, ValueError) as exc:
            await self.driver.close()
            self.driver = None
            raise EventsError(f"cannot use Neo4j at {redact(self.uri)} ({exc}); check --neo4j-uri "
                              "(locally: `culture stack up neo4j`)") from exc

    async def close(self) -> None:
        if self.driver is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.driver.close(), 10)
        self.driver = None

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[_Neo4jClaim]:
        """Lease up to `limit` entries; the unpublished rest is released at exit."""
        assert self.driver is not None, "Neo4jStore.open() first"
        claim = _Neo4jClaim(self.driver, self.outbox, self.lease, self.max_attempts, self.max_backoff)
        try:
            await claim.load(limit)
            yield claim
        finally:
            if claim.held:
                with contextlib.suppress(Neo4jError, ServiceUnavailable, OSError):
                    await claim.release()

    async def wait_for_new(self, at_most: float) -> None:
        """No change feed in Neo4j Community: wait the poll interval."""
        await asyncio.sleep(at_most)

    async def pending(self) -> int:
        """Entries waiting to be published (dead ones not included)."""
        return (await self.counts())["pending"]

    async def counts(self) -> dict[str, int]:
        """pending (not dead), dead, retrying (not dead, failed before), leased (claimed now)."""
        assert self.driver is not None
        e = f"`{self.outbox.label}`"
        records, _, _ = await self.driver.execute_query(
            f"MATCH (e:{e}) WITH count(e) AS total "
            f"OPTIONAL MATCH (f:{e}) WHERE f.failing = true "
            "RETURN total, count(f) AS failing, count(f.dead_at) AS dead", database_=self.outbox.database)
        total, failing, dead = (int(records[0][k]) for k in ("total", "failing", "dead"))
        records, _, _ = await self.driver.execute_query(
            f"MATCH (e:{e}) WHERE e.lease IS NOT NULL RETURN count(e) AS n", database_=self.outbox.database)
        leased = int(records[0]["n"])
        return {"pending": total - dead, "dead": dead, "retrying": failing - dead, "leased": leased}

    async def dead(self, limit: int = 100) -> list[dict[str, object]]:
        """The dead entries, oldest first: ref, topic, key, message_id, attempts, last_error, dead_at."""
        assert self.driver is not None
        records, _, _ = await self.driver.execute_query(
            f"MATCH (e:`{self.outbox.label}`) WHERE e.failing = true AND e.dead_at IS NOT NULL "
            "RETURN e.id AS ref, e.topic AS topic, e.key AS key, e.message_id AS message_id, "
            "e.attempts AS attempts, e.last_error AS last_error, e.dead_at AS dead_at "
            "ORDER BY e.at, e.ord LIMIT $limit", {"limit": limit}, database_=self.outbox.database)
        return [dict(r) for r in records]

