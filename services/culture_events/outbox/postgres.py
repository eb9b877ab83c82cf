"""The PostgreSQL outbox (asyncpg): rows written in the caller's transaction, relayed with SKIP LOCKED.

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
from collections.abc import AsyncIterator

import asyncpg

from culture_events.errors import EventsError
from culture_events.message import Message
from culture_events.outbox.records import Entry, decode_metadata, encode_metadata, prepare

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
        # one round trip: lock a batch, and tell for each row whether an older row of its key is
        # still there outside the batch (held by another relay, or skipped): then it must wait.
        # The NOT EXISTS read sees rows other relays hold locked (a plain read does not wait).
        # This is records.publishable's rule, in SQL.
        self.sql_claim = (
            f"WITH claimed AS (SELECT id, topic, partition_key, message_id, metadata, payload FROM {t} "
            "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) "
            "SELECT c.id, c.topic, c.partition_key, c.message_id, c.metadata::text AS metadata, c.payload, "
            f"NOT EXISTS (SELECT 1 FROM {t} p WHERE p.partition_key = c.partition_key AND p.id < c.id "
            "AND p.id NOT IN (SELECT id FROM claimed)) AS free FROM claimed c ORDER BY c.id")
        self.sql_delete = f"DELETE FROM {t} WHERE id = ANY($1::bigint[])"

    def schema_sql(self) -> list[str]:
        """The DDL of the outbox (idempotent statements)."""
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

    async def ensure_schema(self, conn: asyncpg.Connection) -> None:
        """Create the outbox table and index if missing; safe to run from many processes at once."""
        async with conn.transaction():
            # concurrent CREATE ... IF NOT EXISTS can still collide in the catalog: serialise them
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.table)
            for stmt in self.schema_sql():
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
    def __init__(self, conn: asyncpg.Connection, outbox: PostgresOutbox) -> None:
        self.conn = conn
        self.outbox = outbox
        self.entries: list[Entry] = []
        self.held = 0

    async def load(self, limit: int) -> None:
        rows = await self.conn.fetch(self.outbox.sql_claim, limit)
        self.held = len(rows)
        self.entries = [
            Entry(r["id"], r["topic"],
                  Message(bytes(r["payload"]), decode_metadata(r["metadata"]), id=r["message_id"]))
            for r in rows if r["free"]]

    async def done(self) -> None:
        await self.conn.execute(self.outbox.sql_delete, [e.ref for e in self.entries])

    async def keep_alive(self) -> None:
        """Nothing to do: row locks last as long as the transaction."""


class PostgresStore:
    """The relay's view of a PostgreSQL outbox: claims on one connection, LISTEN on another."""

    def __init__(self, dsn: str, outbox: PostgresOutbox | None = None, *, create_schema: bool = True) -> None:
        self.dsn = dsn
        self.outbox = outbox or PostgresOutbox()
        self.create_schema = create_schema
        self.describe = f"postgres table {self.outbox.table} (LISTEN {self.outbox.channel})"
        self._conn: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._woken = asyncio.Event()

    async def _connect(self) -> asyncpg.Connection:
        try:
            # The relay's own commits (deleting what went out) need not wait for the WAL flush: if
            # the server crashes first, those entries are published again, which at-least-once
            # delivery already allows. The writers' commits stay synchronous.
            return await asyncpg.connect(self.dsn, timeout=10, server_settings={"synchronous_commit": "off"})
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
        """A transaction holding up to `limit` rows; deletes commit at exit, an error rolls back."""
        conn = await self._claim_conn()
        async with conn.transaction():
            claim = _PgClaim(conn, self.outbox)
            await claim.load(limit)
            yield claim

    async def wait_for_new(self, at_most: float) -> None:
        if self._listener is None or self._listener.is_closed():
            await self._listen()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._woken.wait()
        self._woken.clear()

    async def pending(self) -> int:
        conn = await self._claim_conn()
        return int(await conn.fetchval(f"SELECT count(*) FROM {self.outbox.qtable}"))
