"""The MongoDB outbox (motor): documents written in the caller's session transaction, relayed by lease.

Writing::

    outbox = MongoOutbox(client["catalog"], "catalog_outbox")
    await outbox.ensure_schema()                          # once, at start-up (idempotent)
    async with await client.start_session() as session:
        async with session.start_transaction():
            await reviews.insert_one(review, session=session)
            await outbox.publisher(session).publish("catalog.review-created", msg)

Relaying: `Relay(MongoStore(uri, "catalog", "catalog_outbox"), lambda: relay_publisher(brokers, "relay"))`,
or
`culture events relay --store mongo --uri ... --database catalog --collection catalog_outbox`.

MongoDB has no SKIP LOCKED, so a relay claims with a lease: one `update_many` stamps unleased
documents with the relay's claim token and an expiry (atomic per document, so two relays never
hold the same one); the relay publishes what it holds, deletes it, and releases the rest. A relay
that dies leaves its lease to expire (`lease` seconds, default 60), then another relay takes over.
The lease must outlast a publish attempt, or a slow relay and its successor would both publish.

Order per key: each keyed write also bumps a per-key counter (`<collection>_seq`) inside the same
transaction, giving each document its `seq`. Two transactions writing one key conflict on that
counter, so seq order is commit order; ObjectIds from different processes are not ordered.

Wake-ups: a change stream on the collection (inserts) when the server has them (the stack's
SecantusDB does), else polling every `poll_interval` seconds; polling is the fallback anyway.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import uuid
from collections.abc import AsyncIterator
from typing import Any

from bson import Binary
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorClientSession, AsyncIOMotorDatabase
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import PyMongoError

from culture_events.errors import EventsError
from culture_events.message import Message
from culture_events.outbox.records import Entry, decode_metadata, prepare, publishable

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class MongoOutbox:
    """The outbox collection of one database, and its per-key sequence counters."""

    def __init__(self, db: AsyncIOMotorDatabase, collection: str = "culture_outbox") -> None:
        self.db = db
        self.name = collection
        self.collection = db[collection]
        self.counters = db[f"{collection}_seq"]

    async def ensure_schema(self) -> None:
        """Create the collections' indexes (idempotent)."""
        await self.collection.create_index([("lease_until", ASCENDING), ("_id", ASCENDING)])
        await self.collection.create_index([("key", ASCENDING), ("seq", ASCENDING)])
        await self.collection.create_index([("failing", ASCENDING)], sparse=True)

    def publisher(self, session: AsyncIOMotorClientSession) -> MongoOutboxPublisher:
        """A publisher writing into `session`'s open transaction."""
        return MongoOutboxPublisher(session, self)

    async def write(self, session: AsyncIOMotorClientSession, topic: str, messages: list[Message]) -> None:
        """Insert prepared messages in the session's transaction, numbering them per key."""
        counts = collections.Counter(m.key for m in messages if m.key is not None)
        next_seq: dict[str, int] = {}
        for key, n in counts.items():
            doc = await self.counters.find_one_and_update(
                {"_id": key}, {"$inc": {"seq": n}}, upsert=True, return_document=ReturnDocument.AFTER,
                session=session)
            next_seq[key] = int(doc["seq"]) - n + 1
        docs = []
        for m in messages:
            doc: dict[str, Any] = {"topic": topic, "key": m.key, "message_id": m.id, "metadata": m.metadata,
                                   "payload": Binary(m.payload), "lease": None, "lease_until": _EPOCH}
            if m.key is not None:
                doc["seq"] = next_seq[m.key]
                next_seq[m.key] += 1
            docs.append(doc)
        await self.collection.insert_many(docs, ordered=True, session=session)


class MongoOutboxPublisher:
    """A Publisher that writes into the caller's open MongoDB session transaction.

    Publishing without an open transaction is refused: that would be a dual write.
    """

    def __init__(self, session: AsyncIOMotorClientSession, outbox: MongoOutbox) -> None:
        self.session = session
        self.outbox = outbox

    async def publish(self, topic: str, *messages: Message) -> None:
        """Stamp the messages (correlation id, event id, occurred_at) and insert them."""
        if not messages:
            return
        if not self.session.in_transaction:
            raise EventsError("MongoOutboxPublisher.publish needs the caller's open transaction: "
                              "call it inside `async with session.start_transaction():`")
        await self.outbox.write(self.session, topic, [prepare(m) for m in messages])

    async def close(self) -> None:
        """Nothing to close: the session is the caller's."""


#: lease_until of a dead entry: never free again
_NEVER = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


class _MongoClaim:
    def __init__(self, outbox: MongoOutbox, lease: float, max_attempts: int = 8,
                 max_backoff: float = 60.0) -> None:
        self.outbox = outbox
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.token = uuid.uuid4().hex
        self.entries: list[Entry] = []
        self.held = 0

    async def load(self, limit: int) -> None:
        coll = self.outbox.collection
        now = _now()
        free = {"lease_until": {"$lt": now}}
        fields = {"_id": 1, "key": 1, "seq": 1}
        # a refused entry backs off (lease_until in the future, no lease) or is dead (lease_until
        # never passes); the later entries of its key would fill every batch: only its own
        # entry is a candidate until it goes out
        failing = [k for k in await coll.distinct("key", {"failing": True}) if k is not None]
        wanted = {**free, "$or": [{"key": {"$nin": failing}}, {"failing": True}]} if failing else free
        candidates = await coll.find(wanted, fields).sort("_id", ASCENDING).limit(limit).to_list(None)
        if not candidates:
            return
        top: dict[str, int] = {}
        for d in candidates:
            if d.get("key") is not None:
                top[d["key"]] = max(top.get(d["key"], 0), d["seq"])
        # also claim the older entries of those keys, or a batch could be blocked forever by an
        # entry that sorts later by _id (written by another process) but comes first by seq
        same_keys = await coll.find({"key": {"$in": list(top)}}, {**fields, "lease_until": 1}).to_list(None) \
            if top else []
        ids = {d["_id"] for d in candidates}
        ids |= {d["_id"] for d in same_keys if d["seq"] <= top[d["key"]] and d["lease_until"] < now}
        await coll.update_many({"_id": {"$in": list(ids)}, **free},
                               {"$set": {"lease": self.token, "lease_until": now + datetime.timedelta(
                                   seconds=self.lease)}})
        mine = await coll.find({"lease": self.token}).to_list(None)
        self.held = len(mine)
        mine.sort(key=lambda d: (d.get("key") is not None, d.get("key") or "", d.get("seq", 0), d["_id"]))
        entries = [Entry(d["_id"], d["topic"], Message(bytes(d["payload"]), decode_metadata(d["metadata"]),
                                                       id=d["message_id"])) for d in mine]
        pending = sorted(((d["_id"], d["key"], d["seq"]) for d in same_keys if d["seq"] <= top[d["key"]]),
                         key=lambda t: (t[1], t[2]))
        ok = set(publishable([(e.ref, e.key) for e in entries], [(r, k) for r, k, _ in pending]))
        self.entries = [e for e in entries if e.ref in ok]

    async def done(self, entries: list[Entry] | None = None) -> None:
        """Delete the published entries (all of the batch by default)."""
        entries = self.entries if entries is None else entries
        if entries:
            await self.outbox.collection.delete_many({"_id": {"$in": [e.ref for e in entries]},
                                                      "lease": self.token})

    async def failed(self, entry: Entry, error: str) -> tuple[bool, int]:
        """Count a refused publish of `entry`: it backs off (1 s doubling up to max_backoff), or is
        dead after max_attempts. (dead now?, attempts)"""
        coll = self.outbox.collection
        doc = await coll.find_one_and_update(
            {"_id": entry.ref, "lease": self.token},
            {"$inc": {"attempts": 1}, "$set": {"last_error": error[:2000], "failing": True, "lease": None}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            return False, 0
        attempts = int(doc.get("attempts", 1))
        dead = attempts >= self.max_attempts
        until = _NEVER if dead else _now() + datetime.timedelta(
            seconds=min(self.max_backoff, 2.0 ** (attempts - 1)))
        await coll.update_one({"_id": entry.ref}, {"$set": {"lease_until": until,
                                                            "dead_at": _now() if dead else None}})
        return dead, attempts

    async def keep_alive(self) -> None:
        """Push the lease's expiry forward while a publish waits (so no other relay takes over)."""
        await self.outbox.collection.update_many(
            {"lease": self.token}, {"$set": {"lease_until": _now() + datetime.timedelta(seconds=self.lease)}})

    async def release(self) -> None:
        """Give back whatever this claim still holds (unpublished entries)."""
        await self.outbox.collection.update_many({"lease": self.token},
                                                 {"$set": {"lease": None, "lease_until": _EPOCH}})


class MongoStore:
    """The relay's view of a MongoDB outbox: lease claims, change-stream wake-ups, polling fallback."""

    def __init__(self, uri: str, database: str, collection: str = "culture_outbox", *,
                 lease: float = 60.0, create_schema: bool = True, max_attempts: int = 8,
                 max_backoff: float = 60.0) -> None:
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.uri = uri
        self.database = database
        self.collection_name = collection
        self.lease = lease
        self.create_schema = create_schema
        self.describe = f"mongo collection {database}.{collection}"
        self.client: AsyncIOMotorClient | None = None
        self.outbox: MongoOutbox | None = None
        self.watching = False
        self._woken = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect, create indexes if asked, start watching inserts."""
        self.client = AsyncIOMotorClient(self.uri, serverSelectionTimeoutMS=10000, tz_aware=True)
        self.outbox = MongoOutbox(self.client[self.database], self.collection_name)
        try:
            await self.client.admin.command("ping")
            if self.create_schema:
                await self.outbox.ensure_schema()
        except PyMongoError as exc:
            raise EventsError(f"cannot use MongoDB at {self.uri} ({exc}); check --uri "
                              "(locally: `culture stack up mongo`)") from exc
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        """Set the wake-up on every insert; on error, fall back to polling (and retry later)."""
        assert self.outbox is not None
        while True:
            try:
                async with self.outbox.collection.watch([{"$match": {"operationType": "insert"}}],
                                                        max_await_time_ms=1000) as stream:
                    self.watching = True
                    self._woken.set()  # inserts made before the stream opened
                    while True:
                        if await stream.try_next() is not None:
                            self._woken.set()
            except asyncio.CancelledError:
                raise
            except PyMongoError:
                self.watching = False
                await asyncio.sleep(5)  # no change streams (or a lost connection): polling covers it

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, PyMongoError):
                await self._watcher
        if self.client is not None:
            self.client.close()
        self.client = self.outbox = self._watcher = None

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[_MongoClaim]:
        """Lease up to `limit` documents; the unpublished rest is released at exit."""
        assert self.outbox is not None, "MongoStore.open() first"
        claim = _MongoClaim(self.outbox, self.lease, self.max_attempts, self.max_backoff)
        try:
            await claim.load(limit)
            yield claim
        finally:
            if claim.held:
                with contextlib.suppress(PyMongoError):
                    await claim.release()

    async def wait_for_new(self, at_most: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._woken.wait()
        self._woken.clear()

    async def pending(self) -> int:
        """Entries waiting to be published (dead ones not included)."""
        return (await self.counts())["pending"]

    async def counts(self) -> dict[str, int]:
        """pending (not dead), dead, retrying (not dead, failed before), leased (claimed now)."""
        assert self.outbox is not None
        coll = self.outbox.collection
        total = await coll.count_documents({})
        dead = await coll.count_documents({"dead_at": {"$ne": None}})
        failing = await coll.count_documents({"failing": True})
        leased = await coll.count_documents({"lease": {"$ne": None}})
        return {"pending": total - dead, "dead": dead, "retrying": failing - dead, "leased": leased}

    async def dead(self, limit: int = 100) -> list[dict[str, object]]:
        """The dead entries, oldest first: ref, topic, key, message_id, attempts, last_error, dead_at."""
        assert self.outbox is not None
        docs = await self.outbox.collection.find({"dead_at": {"$ne": None}}).sort("_id", ASCENDING) \
            .limit(limit).to_list(None)
        return [{"ref": str(d["_id"]), "topic": d["topic"], "key": d.get("key"),
                 "message_id": d["message_id"], "attempts": d.get("attempts", 0),
                 "last_error": d.get("last_error"), "dead_at": d.get("dead_at")} for d in docs]
