"""Works, reviews and profiles in MongoDB; every event through the outbox, in the same transaction.

Collections (one database): `works`, `reviews`, `profiles`, the outbox (`catalog_outbox` and its
`_seq` counters). Indexes: see `ensure_schema`. Ids are ObjectId strings: unique and roughly time
ordered, so "newest first" is a sort on `_id` and a cursor is the last `_id` seen (keyset paging,
stable under concurrent inserts: a page never repeats or skips a work that existed before).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from culture.catalog.v1 import catalog_pb2
from culture.events.v1 import catalog_events_pb2
from culture_catalog import documents as d
from culture_catalog.profiles import INCOMPLETE, ProfileStore
from culture_contracts.topics import key_of, topic_of
from culture_events.codec import encode
from culture_grpc.errors import AlreadyExists, FailedPrecondition, PermissionDenied, Unavailable, not_found

log = logging.getLogger("culture_catalog")
T = TypeVar("T")
_ATTEMPTS = 50
#: candidates a search ranks at most (search is for finding a work, not for browsing everything)
SEARCH_CANDIDATES = 500
#: works one search token may fetch from the index before the other filters apply in code
SEARCH_SCAN = 5000

EVENTS = (
    catalog_events_pb2.WorkCreated,
    catalog_events_pb2.WorkUpdated,
    catalog_events_pb2.ReviewCreated,
    catalog_events_pb2.ReviewUpdated,
    catalog_events_pb2.ReviewDeleted,
    catalog_events_pb2.ProfileMarkedIncomplete,
)


class _Retry(Exception):
    """Raised inside a transaction body to run the whole attempt again (the document changed)."""


class CatalogStore(ProfileStore):
    """The catalog's database: profiles (inherited), works, reviews and the outbox."""

    def __init__(
        self, uri: str, database: str, outbox_collection: str, *, topic: Callable[[str], str] = lambda t: t
    ) -> None:
        super().__init__(
            uri, database, outbox_collection, created_topic=topic(topic_of(catalog_events_pb2.ProfileCreated))
        )
        self.topics = {cls: topic(topic_of(cls)) for cls in EVENTS}
        self.works = self.db["works"]
        self.reviews = self.db["reviews"]
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def connect(self) -> None:
        await super().connect()
        existing = set(await self.db.list_collection_names())
        for name in ("works", "reviews"):
            if name not in existing:
                try:
                    await self.db.create_collection(name)
                except PyMongoError as exc:  # another replica created it meanwhile
                    log.debug("%s collection: %r", name, exc)
        await self.ensure_schema()

    async def ensure_schema(self) -> None:
        """The indexes (idempotent). Each listing filter leads an index; `_id` orders the pages."""
        w, r = self.works, self.reviews
        await w.create_index([("genre_ancestors", ASCENDING), ("_id", DESCENDING)])
        await w.create_index([("kind", ASCENDING), ("_id", DESCENDING)])
        await w.create_index([("tags", ASCENDING), ("_id", DESCENDING)])
        await w.create_index([("release_year", ASCENDING)])
        await w.create_index([("search_tokens", ASCENDING)])  # multikey: the keyword search
        await w.create_index([("request_key", ASCENDING)], sparse=True)
        await r.create_index([("work_id", ASCENDING), ("author_user_id", ASCENDING)], unique=True)
        await r.create_index([("work_id", ASCENDING), ("_id", DESCENDING)])
        await r.create_index([("author_user_id", ASCENDING), ("_id", DESCENDING)])

    async def _transaction(self, body: Callable[[Any], Awaitable[T]], hot_key: str | None = None) -> T:
        """Run `body(session)` in a transaction, again on a transient conflict or a `_Retry`.

        `hot_key` names a document many calls update at once (a work's rating aggregate): calls of
        this process take turns on it (an asyncio lock), so they do not conflict among themselves;
        other replicas' calls still may, and are retried with jittered backoff."""
        if hot_key is None:
            return await self._attempts(body)
        lock = self._locks.get(hot_key)
        if lock is None:  # weakly held: gone once no call of this process uses it
            lock = self._locks[hot_key] = asyncio.Lock()
        async with lock:
            return await self._attempts(body)

    async def _attempts(self, body: Callable[[Any], Awaitable[T]]) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with await self.client.start_session() as session:
                    async with session.start_transaction():
                        return await body(session)
            except _Retry:
                pass
            except DuplicateKeyError:
                raise
            except PyMongoError as exc:
                if not exc.has_error_label("TransientTransactionError"):
                    raise
            await asyncio.sleep(random.uniform(0.005, 0.03) * min(attempt, 10))
        raise Unavailable("too many concurrent changes of the same document; retry shortly")

    async def _emit(self, session: Any, event: Any) -> None:
        await self.outbox.publisher(session).publish(
            self.topics[type(event)], encode(event, key=key_of(event))
        )

    # -- works -------------------------------------------------------------------------------------

    async def create_work(self, work: catalog_pb2.Work, creator: str, request_id: str) -> dict[str, Any]:
        request_key = f"{creator}:{request_id}" if request_id else None
        if request_key and (old := await self.works.find_one({"request_key": request_key})):
            return old
        doc = d.work_document(work, str(ObjectId()), creator, d.now())
        if request_key:
            doc["request_key"] = request_key

        async def body(session: Any) -> dict[str, Any]:
            await self.works.insert_one(doc, session=session)
            await self._emit(session, d.work_created(doc))
            return doc

        return await self._transaction(body)

    async def update_work(self, work: catalog_pb2.Work, fields: set[str], editor: str) -> dict[str, Any]:
        async def body(session: Any) -> dict[str, Any]:
            doc = await self.works.find_one({"_id": work.work_id}, session=session)
            if doc is None:
                raise not_found("work", work.work_id)
            if doc["creator_user_id"] != editor:
                raise PermissionDenied("only the user who added the work may change it")
            if doc["version"] != work.version:
                raise FailedPrecondition(
                    f"the work changed meanwhile: version {work.version} is stale, "
                    f"the current one is {doc['version']}; read it again"
                )
            if doc["kind"] not in fields and fields & {"book", "film"} - {doc["kind"]}:
                raise FailedPrecondition(f"the work is a {doc['kind']}; its kind cannot change")
            changes = d.apply_work_update(doc, work, fields, d.now())
            result = await self.works.update_one(
                {"_id": work.work_id, "version": work.version}, {"$set": changes}, session=session
            )
            if result.matched_count != 1:
                raise FailedPrecondition(f"the work changed meanwhile: version {work.version} is stale")
            new = {**doc, **changes}
            await self._emit(session, d.work_updated(new))
            return new

        return await self._transaction(body)

    async def get_works(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self.works.find({"_id": {"$in": ids}}, {"search_tokens": 0})}

    async def list_works(self, query: dict[str, Any], after: str | None, limit: int) -> list[dict[str, Any]]:
        if after:
            query = {**query, "_id": {"$lt": after}}
        cursor = self.works.find(query, {"search_tokens": 0}).sort("_id", DESCENDING).limit(limit)
        return await cursor.to_list(None)

    async def search_candidates(
        self, query: dict[str, Any], limit: int = SEARCH_SCAN
    ) -> list[dict[str, Any]]:
        """Works matching `query`, newest first, at most `limit` (search tokens included)."""
        return await self.works.find(query).sort("_id", DESCENDING).limit(limit).to_list(None)

    # -- reviews -----------------------------------------------------------------------------------

    async def create_review(
        self, work_id: str, author: str, rating: int, title: str, body_text: str, request_id: str
    ) -> tuple[dict[str, Any], bool]:
        """(the review, whether it is new). ALREADY_EXISTS when the user reviewed the work before
        (unless it is the same request again)."""
        work = await self.works.find_one({"_id": work_id}, {"search_tokens": 0})
        if work is None:
            raise not_found("work", work_id)
        doc = d.review_document(str(ObjectId()), work, author, rating, title, body_text, request_id, d.now())

        async def body(session: Any) -> dict[str, Any]:
            await self.reviews.insert_one(doc, session=session)
            await self.works.update_one({"_id": work_id}, {"$inc": d.rating_inc(rating, 1)}, session=session)
            await self._emit(session, d.review_created(doc))
            return doc

        try:
            return await self._transaction(body, hot_key=work_id), True
        except DuplicateKeyError:
            old = await self.reviews.find_one({"work_id": work_id, "author_user_id": author})
            if old is not None and request_id and old.get("request_id") == request_id:
                return old, False
            raise AlreadyExists(
                f"user {author!r} has reviewed work {work_id!r} already; update that review instead"
            ) from None

    async def _own_review(self, review_id: str, author: str, session: Any) -> dict[str, Any]:
        doc = await self.reviews.find_one({"_id": review_id}, session=session)
        if doc is None:
            raise not_found("review", review_id)
        if doc["author_user_id"] != author:
            raise PermissionDenied("only the author may change or delete a review")
        return doc

    async def update_review(self, review_id: str, author: str, changes: dict[str, Any]) -> dict[str, Any]:
        work_id = await self._work_of_review(review_id)

        async def body(session: Any) -> dict[str, Any]:
            doc = await self._own_review(review_id, author, session)
            new = {**doc, **changes, "version": doc["version"] + 1, "update_time": d.now()}
            result = await self.reviews.update_one(
                {"_id": review_id, "version": doc["version"]},
                {"$set": {k: new[k] for k in (*changes, "version", "update_time")}},
                session=session,
            )
            if result.matched_count != 1:
                raise _Retry
            if new["rating"] != doc["rating"]:
                inc = d.rating_inc(doc["rating"], -1)
                for k, v in d.rating_inc(new["rating"], 1).items():
                    inc[k] = inc.get(k, 0) + v
                await self.works.update_one({"_id": doc["work_id"]}, {"$inc": inc}, session=session)
            await self._emit(session, d.review_updated(new, doc["rating"]))
            return new

        return await self._transaction(body, hot_key=work_id)

    async def _work_of_review(self, review_id: str) -> str | None:
        doc = await self.reviews.find_one({"_id": review_id}, {"work_id": 1})
        return doc["work_id"] if doc else None

    async def delete_review(self, review_id: str, author: str) -> tuple[dict[str, Any], int]:
        work_id = await self._work_of_review(review_id)

        async def body(session: Any) -> tuple[dict[str, Any], int]:
            doc = await self._own_review(review_id, author, session)
            result = await self.reviews.delete_one(
                {"_id": review_id, "version": doc["version"]}, session=session
            )
            if result.deleted_count != 1:
                raise _Retry
            await self.works.update_one(
                {"_id": doc["work_id"]}, {"$inc": d.rating_inc(doc["rating"], -1)}, session=session
            )
            version = doc["version"] + 1
            await self._emit(session, d.review_deleted(doc, version, d.now()))
            return doc, version

        return await self._transaction(body, hot_key=work_id)

    async def list_reviews(
        self, query: dict[str, Any], after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        if after:
            query = {**query, "_id": {"$lt": after}}
        return await self.reviews.find(query).sort("_id", DESCENDING).limit(limit).to_list(None)

    # -- profiles ----------------------------------------------------------------------------------

    async def update_profile(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        changes = {**changes, "update_time": d.now()}
        result = await self.profiles.find_one_and_update(
            {"_id": user_id}, {"$set": changes}, return_document=True
        )
        if result is None:
            raise not_found("profile", user_id)
        return result

    async def mark_incomplete(self, user_id: str, failed_step: str, reason: str) -> bool | None:
        """Flag the profile incomplete and emit ProfileMarkedIncomplete, once. None: no profile yet."""

        async def body(session: Any) -> bool | None:
            doc = await self.profiles.find_one({"_id": user_id}, session=session)
            if doc is None:
                return None
            if doc.get("state") == INCOMPLETE:
                return False  # a redelivered failure: marked (and announced) before
            when = d.now()
            await self.profiles.update_one(
                {"_id": user_id},
                {"$set": {"state": INCOMPLETE, "incomplete_reason": reason, "update_time": when}},
                session=session,
            )
            await self._emit(
                session,
                catalog_events_pb2.ProfileMarkedIncomplete(
                    user_id=user_id, failed_step=failed_step, reason=reason, mark_time=d.timestamp(when)
                ),
            )
            return True

        return await self._transaction(body)


def utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
