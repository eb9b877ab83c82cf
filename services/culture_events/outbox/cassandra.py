"""The outbox on Cassandra: entries written in the caller's LOGGED batch, relayed by shard cursors.

Cassandra has no multi-row transactions, but a logged batch is applied all or nothing (eventually):
the caller puts `CassandraOutbox.insert` into the batch that writes its own rows, so the event exists
exactly when the change does.

Entries live in ((shard, hour), entry_id timeuuid) partitions with a default TTL; an entry's shard
derives from its partition key, so one key's entries stay in one shard, in entry order. A relay holds
a shard through a lease (a lightweight transaction on `<table>_lease`, renewed while it works) and
keeps the shard's cursor (the last published entry) next to the lease: nothing is deleted, so no
tombstones pile up in the partitions read. An entry is claimed only once it is `grace` seconds old,
so a write still in flight (its timeout stays below the grace) is not passed by the cursor.

Delivery is at-least-once (a relay that dies between publishing and moving the cursor republishes);
consumers deduplicate on the event id.

The driver is threaded: the relay's statements run in worker threads (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from culture_events.message import Message
from culture_events.outbox.records import Entry, decode_metadata, encode_metadata, prepare

log = logging.getLogger(__name__)

_HOUR_MS = 3_600_000


def shard_of(key: str | None, shards: int) -> int:
    """The shard of an entry: a stable hash of its partition key (keyless entries go to shard 0)."""
    if not key:
        return 0
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % shards


@dataclasses.dataclass(frozen=True)
class CassandraOutbox:
    """The outbox tables of one keyspace."""

    keyspace: str
    table: str = "outbox"
    shards: int = 8
    ttl_seconds: int = 7 * 86400
    grace_seconds: float = 3.0

    def schema_cql(self) -> dict[str, str]:
        """Table name -> CREATE TABLE IF NOT EXISTS statement."""
        ks, t = self.keyspace, self.table
        window = max(1, self.ttl_seconds // 86400 // 7) if self.ttl_seconds >= 86400 else 1
        return {
            t: f"CREATE TABLE IF NOT EXISTS {ks}.{t} (shard int, hour bigint, entry_id timeuuid, topic text, "
               "msg_id text, msg_key text, payload blob, metadata text, "
               "PRIMARY KEY ((shard, hour), entry_id)) WITH CLUSTERING ORDER BY (entry_id ASC) "
               f"AND default_time_to_live = {self.ttl_seconds} AND compaction = "
               "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', "
               f"'compaction_window_size': {window}}}",
            f"{t}_lease": f"CREATE TABLE IF NOT EXISTS {ks}.{t}_lease (shard int PRIMARY KEY, owner text, "
                          "hour bigint, entry_id timeuuid)",
        }

    @property
    def insert_cql(self) -> str:
        """The statement to prepare and put into the caller's batch, with `insert_params`."""
        return (f"INSERT INTO {self.keyspace}.{self.table} (shard, hour, entry_id, topic, msg_id, msg_key, "
                "payload, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

    def insert_params(self, topic: str, message: Message) -> tuple[Any, ...]:
        """The values of one entry (the message is stamped now, in the caller's context)."""
        prepare(message)
        entry = uuid.uuid1()
        hour = (entry.time - 0x01B21DD213814000) // 10_000 // _HOUR_MS
        return (shard_of(message.key, self.shards), hour, entry, topic, message.id, message.key or "",
                message.payload, encode_metadata(message))


@dataclasses.dataclass
class _CassandraClaim:
    store: CassandraStore
    shard: int
    entries: list[Entry]
    held: int
    last: tuple[int, uuid.UUID] | None

    async def done(self) -> None:
        if self.last is not None:
            await self.store._advance(self.shard, *self.last)

    async def keep_alive(self) -> None:
        await self.store._renew(self.shard)


class CassandraStore:
    """The relay's view of a Cassandra outbox. `session` returns the connected driver session (the
    service's own; the store neither opens nor closes it)."""

    def __init__(self, session: Callable[[], Any], outbox: CassandraOutbox, *, owner: str | None = None,
                 lease_seconds: int = 30) -> None:
        self._session = session
        self.outbox = outbox
        self.owner = owner or uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.describe = f"cassandra {outbox.keyspace}.{outbox.table} ({outbox.shards} shards)"
        self._prepared: dict[str, Any] = {}
        self._held: dict[int, float] = {}  # shard -> monotonic time the lease was last renewed
        self._next = 0

    async def open(self) -> None:
        await asyncio.to_thread(self._prepare)

    def _prepare(self) -> None:
        ks, t = self.outbox.keyspace, self.outbox.table
        statements = {
            "acquire": f"UPDATE {ks}.{t}_lease USING TTL ? SET owner = ? WHERE shard = ? IF owner = null",
            "renew": f"UPDATE {ks}.{t}_lease USING TTL ? SET owner = ? WHERE shard = ? IF owner = ?",
            "cursor": f"SELECT hour, entry_id FROM {ks}.{t}_lease WHERE shard = ?",
            "advance": f"UPDATE {ks}.{t}_lease SET hour = ?, entry_id = ? WHERE shard = ? IF owner = ?",
            "after": f"SELECT entry_id, topic, msg_id, payload, metadata FROM {ks}.{t} WHERE shard = ? "
                     "AND hour = ? AND entry_id > ? AND entry_id <= maxTimeuuid(?) LIMIT ?",
            "from": f"SELECT entry_id, topic, msg_id, payload, metadata FROM {ks}.{t} WHERE shard = ? "
                    "AND hour = ? AND entry_id <= maxTimeuuid(?) LIMIT ?",
        }
        session = self._session()
        self._prepared = {name: session.prepare(cql) for name, cql in statements.items()}

    def _run(self, name: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self._session().execute(self._prepared[name], params) or [])

    async def close(self) -> None:
        for shard in list(self._held):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._run, "renew", (1, self.owner, shard, self.owner))
        self._held.clear()

    async def _renew(self, shard: int) -> bool:
        params = (self.lease_seconds, self.owner, shard, self.owner)
        rows = await asyncio.to_thread(self._run, "renew", params)
        ok = bool(rows and rows[0].applied)
        if ok:
            self._held[shard] = time.monotonic()
        else:
            self._held.pop(shard, None)
        return ok

    async def _hold(self, shard: int) -> bool:
        """Whether this relay holds the shard now (acquiring or renewing its lease as needed)."""
        renewed = self._held.get(shard)
        if renewed is not None:
            if time.monotonic() - renewed < self.lease_seconds / 3:
                return True
            return await self._renew(shard)
        rows = await asyncio.to_thread(self._run, "acquire", (self.lease_seconds, self.owner, shard))
        if rows and rows[0].applied:
            self._held[shard] = time.monotonic()
            return True
        return False

    async def _advance(self, shard: int, hour: int, entry_id: uuid.UUID) -> None:
        rows = await asyncio.to_thread(self._run, "advance", (hour, entry_id, shard, self.owner))
        if not (rows and rows[0].applied):
            self._held.pop(shard, None)
            raise RuntimeError(f"outbox shard {shard}: the lease was lost before the cursor moved")

    def _read(self, shard: int, limit: int) -> tuple[list[Entry], tuple[int, uuid.UUID] | None]:
        """Entries of the shard after its cursor and older than the grace, oldest first."""
        cursor = self._run("cursor", (shard,))
        upto = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.outbox.grace_seconds)
        now_hour = int(upto.timestamp() * 1000) // _HOUR_MS
        oldest = now_hour - self.outbox.ttl_seconds * 1000 // _HOUR_MS - 1
        last_hour, last_id = (cursor[0].hour, cursor[0].entry_id) if cursor and cursor[0].hour is not None \
            else (oldest, None)
        entries: list[Entry] = []
        last: tuple[int, uuid.UUID] | None = None
        hour = max(last_hour, oldest)
        while hour <= now_hour and len(entries) < limit:
            if last_id is not None and hour == last_hour:
                rows = self._run("after", (shard, hour, last_id, upto, limit - len(entries)))
            else:
                rows = self._run("from", (shard, hour, upto, limit - len(entries)))
            for r in rows:
                msg = Message(bytes(r.payload or b""), decode_metadata(r.metadata or "{}"), id=r.msg_id)
                entries.append(Entry((hour, r.entry_id), r.topic, msg))
                last = (hour, r.entry_id)
            hour += 1
        if last is None and hour > last_hour + 1 and now_hour - 1 > last_hour:
            # nothing new: move an idle cursor forward so the next read does not walk the same hours
            last = (now_hour - 1, uuid.UUID(int=0x00000000_0000_1000_8000_000000000000))
        return entries, last

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[_CassandraClaim]:
        """The next held shard's entries (round robin over the shards, skipping empty ones)."""
        shards = self.outbox.shards
        for i in range(shards):
            shard = (self._next + i) % shards
            if not await self._hold(shard):
                continue
            entries, last = await asyncio.to_thread(self._read, shard, limit)
            if not entries and last is not None:
                with contextlib.suppress(RuntimeError):
                    await self._advance(shard, *last)
                continue
            if entries:
                self._next = shard + 1
                yield _CassandraClaim(self, shard, entries, len(entries), last)
                return
        yield _CassandraClaim(self, -1, [], 0, None)

    async def wait_for_new(self, at_most: float) -> None:
        """No change feed: wait the poll interval."""
        await asyncio.sleep(at_most)

    async def pending(self) -> int:
        """Not counted (it would scan every partition): 0."""
        return 0
