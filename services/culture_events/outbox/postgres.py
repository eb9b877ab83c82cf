"""The PostgreSQL outbox (asyncpg): rows written in the caller's transaction, relayed by lease.

A claim is one committed statement (SKIP LOCKED picks the rows, an UPDATE stamps the relay's token
and a lease expiry), so no transaction stays open while the relay publishes (or waits for Kafka).

Writing::

    outbox = PostgresOutbox("identity_outbox")
    await outbox.ensure_schema(conn)                      # once, at start-up (idempotent)
    async with conn.transaction():
        await conn.execute("INSERT INTO accounts ...")
        await outbox.publisher(conn).publish("identity.user-registered", msg)

Relaying: `Relay(PostgresStore(dsn, outbox), lambda: relay_publisher(brokers, "my-relay")).run(stop)`, or
`culture events relay --store postgres --dsn ... --brokers ...`.

The insert also runs `pg_notify(<table>_new)`; PostgreSQL delivers it when (and only if) the
transaction commits, which wakes every relay LISTENing on the channel. Polling every
`poll_interval` seconds remains as the fallback for a lost listener connection.

Order: entries of one partition key are published in `id` (bigserial) order. That is their commit
order whenever writes to one aggregate are serialised, as they are when the transaction first
updates the aggregate's row (its row lock) and then writes the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg

from culture_events.errors import EventsError
from culture_events.message import Message
from culture_events.outbox.records import Entry, decode_metadata, encode_metadata, prepare

#: the columns `relay_schema_sql()` adds
RELAY_COLUMNS = ("attempts", "last_error", "next_attempt_at", "lease", "lease_until", "dead_at")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _quote(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"outbox table name {name!r} must be `table` or `schema.table` made of "
                         "letters, digits and underscores")
    return ".".join(f'"{p}"' for p in parts)


class PostgresOutbox:
    """Where the outbox lives (table, NOTIFY channel) and the SQL that reads and writes it."""

    def __init__(self, table: str = "culture_outbox") -> None:
        self.table = table
        self.qtable = _quote(table)
        self.channel = (table.replace(".", "_") + "_new")[:63]
        t = self.qtable
        self.sql_insert = (
            f"WITH rows AS (INSERT INTO {t} (topic, partition_key, message_id, metadata, payload) "
            "SELECT topic, partition_key, message_id, metadata, payload FROM unnest("
            "$1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) WITH ORDINALITY "
            "AS u(topic, partition_key, message_id, metadata, payload, n) ORDER BY n RETURNING 1) "
            "SELECT pg_notify($6, '') FROM (SELECT count(*) FROM rows) AS c")
        # one statement (autocommit: no transaction stays open while the relay publishes): lease a
        # batch of free, due entries, skipping those of a key whose older entry backs off after a
        # failure or is dead (they would fill every batch), and tell for each leased row whether an
        # older row of its key is still there outside the batch (held by another relay): then it
        # must wait. The NOT EXISTS reads see rows other relays hold. records.publishable's rule.
        self.sql_claim = (
            f"WITH candidates AS (SELECT id FROM {t} o "
            "WHERE lease_until < now() AND next_attempt_at <= now() AND dead_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {t} b WHERE b.attempts > 0 "
            "AND b.partition_key = o.partition_key AND b.id < o.id "
            "AND (b.dead_at IS NOT NULL OR b.next_attempt_at > now())) "
            "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED), "
            f"claimed AS (UPDATE {t} o SET lease = $2, lease_until = now() + make_interval(secs => $3) "
            "FROM candidates c WHERE o.id = c.id "
            "RETURNING o.id, o.topic, o.partition_key, o.message_id, o.metadata, o.payload) "
            "SELECT c.id, c.topic, c.partition_key, c.message_id, c.metadata::text AS metadata, c.payload, "
            f"NOT EXISTS (SELECT 1 FROM {t} p WHERE p.partition_key = c.partition_key AND p.id < c.id "
            "AND p.id NOT IN (SELECT id FROM claimed)) AS free FROM claimed c ORDER BY c.id")
        self.sql_delete = f"DELETE FROM {t} WHERE id = ANY($1::bigint[])"
        self.sql_release = f"UPDATE {t} SET lease = NULL, lease_until = '-infinity' WHERE lease = $1"
        self.sql_keep_alive = (f"UPDATE {t} SET lease_until = now() + make_interval(secs => $2) "
                               "WHERE lease = $1")
        # a refused entry: one more attempt, the next one after a backoff (1 s doubling up to $4),
        # dead after $3 attempts
        self.sql_failed = (
            f"UPDATE {t} SET attempts = attempts + 1, last_error = $2, "
            "lease = NULL, lease_until = '-infinity', "
            "next_attempt_at = now() + make_interval(secs => least($4::float8, power(2, attempts)::float8)), "
            "dead_at = CASE WHEN attempts + 1 >= $3 THEN now() END "
            "WHERE id = $1 RETURNING dead_at IS NOT NULL AS dead, attempts")
        self.sql_counts = (
            f"SELECT count(*) FILTER (WHERE dead_at IS NULL) AS pending, "
            "count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead, "
            "count(*) FILTER (WHERE dead_at IS NULL AND attempts > 0) AS retrying, "
            f"count(*) FILTER (WHERE dead_at IS NULL AND lease_until >= now()) AS leased FROM {t}")
        self.sql_dead = (
            "SELECT id::text AS ref, topic, partition_key AS key, message_id, attempts, last_error, "
            f"dead_at, created_at FROM {t} WHERE dead_at IS NOT NULL ORDER BY id LIMIT $1")

    def schema_sql(self) -> list[str]:
        """The DDL of the outbox (idempotent statements): `base_schema_sql()` + `relay_schema_sql()`."""
        return [*self.base_schema_sql(), *self.relay_schema_sql()]

    def base_schema_sql(self) -> list[str]:
        """The table and its key index, as first shipped (a service's migration of that time)."""
        t, base = self.qtable, self.table.replace(".", "_")
        return [
            f"CREATE TABLE IF NOT EXISTS {t} ("
            " id bigserial PRIMARY KEY,"
            " topic text NOT NULL,"
            " partition_key text,"
            " message_id text NOT NULL,"
            " metadata jsonb NOT NULL DEFAULT '{}'::jsonb,"
            " payload bytea NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())",
            f'CREATE INDEX IF NOT EXISTS "{base}_key_id" ON {t} (partition_key, id) '
            "WHERE partition_key IS NOT NULL",
        ]

    def relay_schema_sql(self) -> list[str]:
        """The relay's bookkeeping (leases, attempts, dead entries), added to a table made by
        `base_schema_sql()`: a service with its own migrations adds these as a later migration."""
        t, base = self.qtable, self.table.replace(".", "_")
        return [
            f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0, "
            "ADD COLUMN IF NOT EXISTS last_error text, "
            "ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz NOT NULL DEFAULT '-infinity', "
            "ADD COLUMN IF NOT EXISTS lease text, "
            "ADD COLUMN IF NOT EXISTS lease_until timestamptz NOT NULL DEFAULT '-infinity', "
            "ADD COLUMN IF NOT EXISTS dead_at timestamptz",
            # the few entries that failed: looked up for every candidate of a claim
            f'CREATE INDEX IF NOT EXISTS "{base}_failing" ON {t} (partition_key, id) WHERE attempts > 0',
        ]

    async def ensure_schema(self, conn: asyncpg.Connection) -> None:
        """Create the outbox table and index if missing; safe to run from many processes at once."""
        async with conn.transaction():
            # concurrent CREATE ... IF NOT EXISTS can still collide in the catalog: serialise them
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.table)
            # ALTER TABLE takes an exclusive lock even when it adds nothing, and taking it after
            # the CREATE INDEX's share lock could deadlock with writers: only when columns are
            # missing, and then first
            have = await conn.fetchval(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
                "AND attname = ANY($2::text[]) AND NOT attisdropped", self.qtable, list(RELAY_COLUMNS))
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", self.qtable)
            alter, *indexes = self.relay_schema_sql()
            statements = [*self.base_schema_sql(), *indexes]
            if not exists:
                statements = self.schema_sql()
            elif have < len(RELAY_COLUMNS):
                statements = [alter, *statements]
            for stmt in statements:
                await conn.execute(stmt)

    def publisher(self, conn: asyncpg.Connection) -> OutboxPublisher:
        """A publisher writing into `conn`'s open transaction."""
        return OutboxPublisher(conn, self)

    async def write(self, conn: asyncpg.Connection, topic: str, messages: list[Message]) -> None:
        """Insert prepared messages on `conn` (in whatever transaction it has) and notify relays."""
        await conn.execute(
            self.sql_insert, [topic] * len(messages), [m.key for m in messages], [m.id for m in messages],
            [encode_metadata(m) for m in messages], [m.payload for m in messages], self.channel)


class OutboxPublisher:
    """A Publisher that writes into the caller's open asyncpg transaction instead of a broker.

    The messages become visible to the relay when the caller commits, and vanish if it rolls back.
    Publishing outside a transaction is refused: that would be the dual write the outbox exists to
    avoid (`async with conn.transaction(): ...`).
    """

    def __init__(self, conn: asyncpg.Connection, outbox: PostgresOutbox | None = None) -> None:
        self.conn = conn
        self.outbox = outbox or PostgresOutbox()

    async def publish(self, topic: str, *messages: Message) -> None:
        """Stamp the messages (correlation id, event id, occurred_at) and insert them."""
        if not messages:
            return
        if not self.conn.is_in_transaction():
            raise EventsError("OutboxPublisher.publish needs the caller's open transaction: "
                              "call it inside `async with conn.transaction():`")
        await self.outbox.write(self.conn, topic, [prepare(m) for m in messages])

    async def close(self) -> None:
        """Nothing to close: the connection is the caller's."""


class _PgClaim:
    def __init__(self, conn: asyncpg.Connection, outbox: PostgresOutbox, lease: float, max_attempts: int,
                 max_backoff: float) -> None:
        self.conn = conn
        self.outbox = outbox
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.token = uuid.uuid4().hex
        self.entries: list[Entry] = []
        self.held = 0

    async def load(self, limit: int) -> None:
        rows = await self.conn.fetch(self.outbox.sql_claim, limit, self.token, self.lease)
        self.held = len(rows)
        self.entries = [
            Entry(r["id"], r["topic"],
                  Message(bytes(r["payload"]), decode_metadata(r["metadata"]), id=r["message_id"]))
            for r in rows if r["free"]]

    async def done(self, entries: list[Entry] | None = None) -> None:
        """Delete the published entries (all of the batch by default)."""
        entries = self.entries if entries is None else entries
        if entries:
            await self.conn.execute(self.outbox.sql_delete, [e.ref for e in entries])

    async def failed(self, entry: Entry, error: str) -> tuple[bool, int]:
        """Count a refused publish of `entry`: (whether it is dead now, its attempts)."""
        row = await self.conn.fetchrow(self.outbox.sql_failed, entry.ref, error[:2000], self.max_attempts,
                                       self.max_backoff)
        return (bool(row["dead"]), int(row["attempts"])) if row is not None else (False, 0)

    async def keep_alive(self) -> None:
        """Push the lease forward while a publish waits (so no other relay takes the entries over)."""
        await self.conn.execute(self.outbox.sql_keep_alive, self.token, self.lease)

    async def release(self) -> None:
        """Give back what this claim still holds (entries not published)."""
        await self.conn.execute(self.outbox.sql_release, self.token)


class PostgresStore:
    """The relay's view of a PostgreSQL outbox: claims on one connection, LISTEN on another."""

    def __init__(self, dsn: str, outbox: PostgresOutbox | None = None, *, create_schema: bool = True,
                 lease: float = 30.0, max_attempts: int = 8, max_backoff: float = 60.0,
                 application_name: str = "culture-events-relay") -> None:
        """`lease`: how long a claim holds its entries without a keep-alive (a relay that died lets
        them go after it); `max_attempts`: refused publishes of an entry before it is dead;
        `max_backoff`: cap on the wait between two attempts (1 s, doubled each time)."""
        self.dsn = dsn
        self.outbox = outbox or PostgresOutbox()
        self.create_schema = create_schema
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.application_name = application_name
        self.describe = f"postgres table {self.outbox.table} (LISTEN {self.outbox.channel})"
        self._conn: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._woken = asyncio.Event()

    async def _connect(self) -> asyncpg.Connection:
        try:
            # The relay's own commits (deleting what went out) need not wait for the WAL flush: if
            # the server crashes first, those entries are published again, which at-least-once
            # delivery already allows. The writers' commits stay synchronous.
            return await asyncpg.connect(self.dsn, timeout=10, server_settings={
                "synchronous_commit": "off", "application_name": self.application_name})
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise EventsError(f"cannot connect to PostgreSQL ({exc}); check --dsn "
                              "(locally: `culture stack up postgres`)") from exc

    async def open(self) -> None:
        """Connect, create the table if asked, start LISTENing."""
        self._conn = await self._connect()
        if self.create_schema:
            await self.outbox.ensure_schema(self._conn)
        await self._listen()

    async def _listen(self) -> None:
        """(Re)connect the LISTEN connection; without it the relay still polls."""
        with contextlib.suppress(EventsError, OSError, asyncpg.PostgresError):
            conn = await self._connect()
            await conn.add_listener(self.outbox.channel, self._notified)
            self._listener = conn  # only now: `listening` means a NOTIFY can no longer be missed
            self._woken.set()  # anything committed while not listening is picked up at once

    @property
    def listening(self) -> bool:
        """Whether NOTIFY wake-ups arrive (else the relay polls)."""
        return self._listener is not None and not self._listener.is_closed()

    def _notified(self, *_: object) -> None:
        self._woken.set()

    async def close(self) -> None:
        for conn in (self._listener, self._conn):
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)
        self._conn = self._listener = None

    async def _claim_conn(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect()
        return self._conn

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[_PgClaim]:
        """Lease up to `limit` rows (committed at once: no transaction stays open while they are
        published); what was not deleted or counted as failed is released at exit."""
        conn = await self._claim_conn()
        claim = _PgClaim(conn, self.outbox, self.lease, self.max_attempts, self.max_backoff)
        try:
            await claim.load(limit)
            yield claim
        finally:
            if claim.held:
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await claim.release()

    async def wait_for_new(self, at_most: float) -> None:
        if self._listener is None or self._listener.is_closed():
            await self._listen()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._woken.wait()
        self._woken.clear()

    async def pending(self) -> int:
        """Entries waiting to be published (dead ones not included)."""
        return (await self.counts())["pending"]

    async def counts(self) -> dict[str, int]:
        """pending (not dead), dead, retrying (not dead, failed before), leased (claimed now)."""
        conn = await self._claim_conn()
        row = await conn.fetchrow(self.outbox.sql_counts)
        return {k: int(row[k]) for k in ("pending", "dead", "retrying", "leased")}

    async def dead(self, limit: int = 100) -> list[dict[str, object]]:
        """The dead entries, oldest first: ref, topic, key, message_id, attempts, last_error, dead_at."""
        conn = await self._claim_conn()
        return [dict(r) for r in await conn.fetch(self.outbox.sql_dead, limit)]
