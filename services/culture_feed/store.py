"""The feed's Cassandra store: schema migrations, the timelines, the authors' own reviews, the follow
mirror and the feed rows. The driver is threaded; every call here is bridged to asyncio (single
statements through `execute_async` (culture_runtime.cassandra), batches through `execute_concurrent`
in a worker thread), so the event loop never blocks on Cassandra.

Tables (keyspace from the settings):
- feeds (user_id) -> the user's feed row;
- timeline ((user_id, bucket), item_id DESC) -> the copies fanned out to a reader, one partition per
  time bucket; timeline_buckets (user_id, bucket DESC) -> the buckets that hold items;
- authored ((author_user_id, bucket), item_id DESC) + authored_buckets -> every review by its author
  (the source of the backfill and of the celebrities' read-time merge);
- review_recipients (review_id, chunk) -> who got copies of a review, one row per fan-out batch (the
  copies' ids derive from the review's event and the recipient: updates and deletions recompute them);
- reviews (review_id) -> the review's author item, source event and whether it is deleted;
- following (user_id, followee_user_id) -> the follow mirror; celebrities (shard, author_user_id).

Review cells are written with `USING TIMESTAMP <version>`, so the newest version wins in any order
of delivery; a deletion is a tombstone at its version that older writes cannot resurrect. Follow
mirror rows use the event time (microseconds) the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from culture_feed import model
from culture_feed.settings import FeedSettings
from culture_runtime.cassandra import KeyspaceStore

#: the execution profile of the timeline pages (rows as tuples)
_PAGES = "pages"

_ITEM_COLUMNS = "actor_user_id text, review_id text, work_id text, work_title text, rating int, " \
                "excerpt text, genre_slugs list<text>"


def _schema(settings: FeedSettings) -> dict[str, str]:
    """The feed's tables (in "{ks}"), besides `meta`."""
    ttl = settings.item_ttl_days * 86400
    window = max(1, settings.item_ttl_days // 30) if ttl else 30
    timeseries = (f"CLUSTERING ORDER BY (item_id DESC) AND default_time_to_live = {ttl} AND compaction = "
                  f"{{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', "
                  f"'compaction_window_size': {window}}}")
    return {
        "feeds": "CREATE TABLE IF NOT EXISTS {ks}.feeds (user_id text PRIMARY KEY, username text, "
                 "create_time timestamp)",
        "timeline": "CREATE TABLE IF NOT EXISTS {ks}.timeline (user_id text, bucket bigint, "
                    f"item_id timeuuid, {_ITEM_COLUMNS}, PRIMARY KEY ((user_id, bucket), item_id)) "
                    f"WITH {timeseries}",
        "timeline_buckets": "CREATE TABLE IF NOT EXISTS {ks}.timeline_buckets (user_id text, bucket bigint, "
                            "PRIMARY KEY ((user_id), bucket)) WITH CLUSTERING ORDER BY (bucket DESC)",
        "authored": "CREATE TABLE IF NOT EXISTS {ks}.authored (author_user_id text, bucket bigint, "
                    f"item_id timeuuid, source_event_id text, {_ITEM_COLUMNS}, "
                    f"PRIMARY KEY ((author_user_id, bucket), item_id)) WITH {timeseries}",
        "authored_buckets": "CREATE TABLE IF NOT EXISTS {ks}.authored_buckets (author_user_id text, "
                            "bucket bigint, PRIMARY KEY ((author_user_id), bucket)) "
                            "WITH CLUSTERING ORDER BY (bucket DESC)",
        "review_recipients": "CREATE TABLE IF NOT EXISTS {ks}.review_recipients (review_id text, "
                             "chunk text, user_ids list<text>, PRIMARY KEY ((review_id), chunk))",
        "reviews": "CREATE TABLE IF NOT EXISTS {ks}.reviews (review_id text PRIMARY KEY, "
                   "author_user_id text, bucket bigint, item_id timeuuid, source_event_id text, "
                   "deleted boolean)",
        "following": "CREATE TABLE IF NOT EXISTS {ks}.following (user_id text, followee_user_id text, "
                     "PRIMARY KEY ((user_id), followee_user_id))",
        "celebrities": "CREATE TABLE IF NOT EXISTS {ks}.celebrities (shard int, author_user_id text, "
                       "PRIMARY KEY ((shard), author_user_id))",
    }


@dataclasses.dataclass(frozen=True)
class Authored:
    """A review as its author's item (the source of copies)."""

    item: model.Item
    source_event_id: str


class FeedStore(KeyspaceStore):
    """The feed's tables in one keyspace."""

    service = "feed"
    settings: FeedSettings

    def __init__(self, contact_points: str, port: int, settings: FeedSettings) -> None:
        super().__init__(contact_points, port, settings)
        self._indexed: set[tuple[str, int]] = set()

    # -- connection and schema (culture_runtime.cassandra) --------------------------------------

    def _tables(self) -> dict[str, str]:
        return {name: ddl.replace("{ks}", self.ks) for name, ddl in _schema(self.settings).items()}

    def _layout(self) -> dict[str, object]:
        # the bucket span is part of the data's layout: a different one would hide items
        return {"bucket_seconds": self.settings.bucket_seconds}

    def _profiles(self) -> dict[str, dict[str, Any]]:
        from cassandra.query import tuple_factory

        # the timeline pages: plain tuples (the default named tuples build a class per result)
        return {_PAGES: {"row_factory": tuple_factory}}

    def _prepare(self) -> None:
        ks = self.ks
        cols = "actor_user_id, review_id, work_id, work_title, rating, excerpt, genre_slugs"
        statements = {
            "feed_insert": f"INSERT INTO {ks}.feeds (user_id, username, create_time) VALUES (?, ?, ?)",
            "feed_get": f"SELECT user_id FROM {ks}.feeds WHERE user_id = ?",
            "timeline_insert": f"INSERT INTO {ks}.timeline (user_id, bucket, item_id, {cols}) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            "timeline_update": f"UPDATE {ks}.timeline USING TIMESTAMP ? SET rating = ?, excerpt = ?, "
                               "genre_slugs = ? WHERE user_id = ? AND bucket = ? AND item_id = ?",
            "timeline_delete": f"DELETE FROM {ks}.timeline USING TIMESTAMP ? WHERE user_id = ? "
                               "AND bucket = ? AND item_id = ?",
            "bucket_insert": f"INSERT INTO {ks}.timeline_buckets (user_id, bucket) VALUES (?, ?)",
            "recipients_insert": f"INSERT INTO {ks}.review_recipients (review_id, chunk, user_ids) "
                                 "VALUES (?, ?, ?)",
            "recipients": f"SELECT user_ids FROM {ks}.review_recipients WHERE review_id = ?",
            "authored_insert": f"INSERT INTO {ks}.authored (author_user_id, bucket, item_id, "
                               f"source_event_id, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                               "USING TIMESTAMP ?",
            "authored_update": f"UPDATE {ks}.authored USING TIMESTAMP ? SET rating = ?, excerpt = ?, "
                               "genre_slugs = ? WHERE author_user_id = ? AND bucket = ? AND item_id = ?",
            "authored_delete": f"DELETE FROM {ks}.authored USING TIMESTAMP ? WHERE author_user_id = ? "
                               "AND bucket = ? AND item_id = ?",
            "authored_bucket_insert": f"INSERT INTO {ks}.authored_buckets (author_user_id, bucket) "
                                      "VALUES (?, ?)",
            "review_insert": f"INSERT INTO {ks}.reviews (review_id, author_user_id, bucket, item_id, "
                             "source_event_id) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            "review_delete": f"UPDATE {ks}.reviews USING TIMESTAMP ? SET deleted = true WHERE review_id = ?",
            "review_get": f"SELECT author_user_id, bucket, item_id, source_event_id, deleted "
                          f"FROM {ks}.reviews "
                          "WHERE review_id = ?",
            "follow_insert": f"INSERT INTO {ks}.following (user_id, followee_user_id) VALUES (?, ?) "
                             "USING TIMESTAMP ?",
            "follow_delete": f"DELETE FROM {ks}.following USING TIMESTAMP ? WHERE user_id = ? "
                             "AND followee_user_id = ?",
            "following": f"SELECT followee_user_id FROM {ks}.following WHERE user_id = ?",
            "celebrity_insert": f"INSERT INTO {ks}.celebrities (shard, author_user_id) VALUES (0, ?)",
            "celebrity_get": f"SELECT author_user_id FROM {ks}.celebrities WHERE shard = 0 "
                             "AND author_user_id = ?",
            "celebrities": f"SELECT author_user_id FROM {ks}.celebrities WHERE shard = 0",
            "buckets": f"SELECT bucket FROM {ks}.timeline_buckets WHERE user_id = ? AND bucket <= ? LIMIT ?",
            "page": f"SELECT item_id, {cols} FROM {ks}.timeline WHERE user_id = ? AND bucket = ? "
                    "AND item_id <= ? LIMIT ?",
            # one or two buckets in one query, each newest first (ORDER BY would make Cassandra read the
            # whole partitions to sort them: the caller merges)
            "page_in": f"SELECT item_id, {cols} FROM {ks}.timeline WHERE user_id = ? AND bucket IN ? "
                       "AND item_id <= ? PER PARTITION LIMIT ?",
            "authored_buckets": f"SELECT bucket FROM {ks}.authored_buckets WHERE author_user_id = ? "
                                "AND bucket <= ? LIMIT ?",
            "authored_page": f"SELECT item_id, source_event_id, {cols} FROM {ks}.authored "
                             "WHERE author_user_id = ? AND bucket = ? AND item_id <= ? LIMIT ?",
            "authored_page_in": f"SELECT item_id, source_event_id, {cols} FROM {ks}.authored "
                                "WHERE author_user_id = ? AND bucket IN ? AND item_id <= ? "
                                "PER PARTITION LIMIT ?",
        }
        self._prepared = {name: self.session.prepare(cql) for name, cql in statements.items()}

    # -- plumbing -------------------------------------------------------------------------------

    async def _many(self, work: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run many statements with at most `write_concurrency` in flight (execute_concurrent, in a
        worker thread); the first failure raises (the handler retries the whole, idempotent batch)."""
        if not work:
            return
        from cassandra.concurrent import execute_concurrent

        statements = [(self._prepared[name], params) for name, params in work]
        await asyncio.to_thread(execute_concurrent, self.session, statements,
                                concurrency=self.settings.write_concurrency, raise_on_first_error=True,
                                results_generator=False)

    def bucket(self, item: uuid.UUID) -> int:
        return model.bucket_of(item, self.settings.bucket_seconds)

    # -- feeds ----------------------------------------------------------------------------------

    async def create_feed(self, user_id: str, username: str, when: dt.datetime) -> None:
        await self._run("feed_insert", (user_id, username, when))

    async def feed_exists(self, user_id: str) -> bool:
        return bool(await self._run("feed_get", (user_id,)))

    # -- reviews --------------------------------------------------------------------------------

    async def review_state(self, review_id: str) -> Any:
        rows = await self._run("review_get", (review_id,))
        return rows[0] if rows else None

    async def record_authored(self, authored: Authored, version: int) -> None:
        """The review as its author's item (and the review's row), written before any copy."""
        i = authored.item
        b = self.bucket(i.item_id)
        await self._many([
            ("authored_insert", (i.actor_user_id, b, i.item_id, authored.source_event_id, i.actor_user_id,
                                 i.review_id, i.work_id, i.work_title, i.rating, i.excerpt,
                                 list(i.genre_slugs), version)),
            ("authored_bucket_insert", (i.actor_user_id, b)),
            ("review_insert", (i.review_id, i.actor_user_id, b, i.item_id, authored.source_event_id,
                               version)),
        ])

    def copy_statements(self, authored: Authored, recipients: Sequence[str],
                        version: int) -> list[tuple[str, Sequence[Any]]]:
        """The writes that put a review into the recipients' timelines: one row per copy, the bucket
        index row of a (user, bucket) this process has not written yet, and one recipients row."""
        i = authored.item
        when = model.time_of(i.item_id)
        out: list[tuple[str, Sequence[Any]]] = []
        for user in recipients:
            iid = model.item_id(when, authored.source_event_id, user)
            b = self.bucket(iid)
            out.append(("timeline_insert", (user, b, iid, i.actor_user_id, i.review_id, i.work_id,
                                            i.work_title, i.rating, i.excerpt, list(i.genre_slugs), version)))
            if (user, b) not in self._indexed:
                out.append(("bucket_insert", (user, b)))
        if recipients:
            chunk = hashlib.sha256("\x00".join(recipients).encode()).hexdigest()[:32]
            out.append(("recipients_insert", (i.review_id, chunk, list(recipients))))
        return out

    def _remember_buckets(self, work: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """(user, bucket) index rows now written: later copies to the same bucket skip them (bounded;
        forgetting only costs a redundant, idempotent write)."""
        if len(self._indexed) > 1_000_000:
            self._indexed.clear()
        self._indexed.update((p[0], p[1]) for name, p in work if name == "bucket_insert")

    async def copy_to(self, authored: Authored, recipients: Sequence[str], version: int) -> None:
        work = self.copy_statements(authored, recipients, version)
        await self._many(work)
        self._remember_buckets(work)

    async def copy_many(self, copies: Sequence[tuple[Authored, Sequence[str]]], version: int) -> None:
        work = [w for a, r in copies for w in self.copy_statements(a, r, version)]
        await self._many(work)
        self._remember_buckets(work)

    async def _copies(self, review: Any, review_id: str) -> list[tuple[str, int, uuid.UUID]]:
        """(user, bucket, item id) of every copy of a review."""
        if review is None or review.item_id is None or not review.source_event_id:
            return []
        when = model.time_of(review.item_id)
        users = {u for row in await self._run("recipients", (review_id,)) for u in (row.user_ids or [])}
        out = []
        for user in sorted(users):
            iid = model.item_id(when, review.source_event_id, user)
            out.append((user, self.bucket(iid), iid))
        return out

    async def update_review(self, review_id: str, version: int, rating: int, excerpt: str,
                            genre_slugs: Sequence[str]) -> int:
        """Update the review's item and its copies (at `version`); how many copies."""
        review = await self.review_state(review_id)
        if review is None:
            return 0
        copies = await self._copies(review, review_id)
        work: list[tuple[str, Sequence[Any]]] = [
            ("authored_update", (version, rating, excerpt, list(genre_slugs), review.author_user_id,
                                 review.bucket, review.item_id))]
        work += [("timeline_update", (version, rating, excerpt, list(genre_slugs), user, b, iid))
                 for user, b, iid in copies]
        await self._many(work)
        return len(copies)

    async def delete_review(self, review_id: str, author_user_id: str, version: int) -> int:
        """Tombstone the review, its item and its copies (at `version`); how many copies."""
        review = await self.review_state(review_id)
        work: list[tuple[str, Sequence[Any]]] = [("review_delete", (version, review_id))]
        copies = await self._copies(review, review_id)
        if review is not None and review.item_id is not None:
            work.append(("authored_delete", (version, review.author_user_id, review.bucket, review.item_id)))
        work += [("timeline_delete", (version, user, b, iid)) for user, b, iid in copies]
        await self._many(work)
        return len(copies)

    # -- follows and celebrities ----------------------------------------------------------------

    async def follow(self, follower: str, followee: str, at_us: int) -> None:
        await self._run("follow_insert", (follower, followee, at_us))

    async def unfollow(self, follower: str, followee: str, at_us: int) -> None:
        await self._run("follow_delete", (at_us, follower, followee))

    async def following(self, user_id: str) -> set[str]:
        return {r.followee_user_id for r in await self._run("following", (user_id,))}

    async def mark_celebrity(self, author: str) -> None:
        await self._run("celebrity_insert", (author,))

    async def is_celebrity(self, author: str) -> bool:
        return bool(await self._run("celebrity_get", (author,)))

    async def celebrities(self) -> set[str]:
        return {r.author_user_id for r in await self._run("celebrities", ())}

    # -- reads ----------------------------------------------------------------------------------

    async def _walk(self, buckets_stmt: str, page_stmt: str, key: str, upper: uuid.UUID,
                    want: int) -> list[tuple[Any, ...]]:
        """The newest `want` rows at or below `upper` of a bucketed partition set, newest first (tuples,
        the page statement's columns).

        One round trip for most pages: the cursor's bucket is read first (a first page: the reader's
        current bucket and the next one, in one query); the bucket list only when that read comes up
        short (the page crosses into older buckets, or nothing is recent). Items dated beyond the next
        bucket of this clock (a writer's clock a whole bucket ahead) are read once their bucket is
        the next one."""
        now = self.bucket(model.bound_id(model.uuid_ticks(dt.datetime.now(dt.UTC))))
        top = min(self.bucket(upper), now + 1)
        first = [top, top - 1] if top > now else [top]
        rows: list[tuple[Any, ...]] = await self._run(page_stmt + "_in", (key, first, upper, want), _PAGES)
        if len(first) > 1:  # two partitions, in the server's (token) order: newest first, the page's worth
            rows = sorted(rows, key=lambda r: model.order_key(r[0]), reverse=True)[:want]
        top = first[-1] - 1
        scanned = 0
        while len(rows) < want:
            buckets = [r.bucket for r in await self._run(buckets_stmt, (key, top, 16))]
            for b in buckets:
                rows += await self._run(page_stmt, (key, b, upper, want - len(rows)), _PAGES)
                if len(rows) >= want:
                    return rows
            scanned += len(buckets)
            if len(buckets) < 16 or scanned >= 4096:
                return rows
            top = buckets[-1] - 1
        return rows

    async def timeline(self, user_id: str, upper: uuid.UUID, want: int) -> list[model.Item]:
        return [_item(r[0], r[1:]) for r in await self._walk("buckets", "page", user_id, upper, want)]

    async def authored_items(self, author: str, upper: uuid.UUID, want: int) -> list[Authored]:
        rows = await self._walk("authored_buckets", "authored_page", author, upper, want)
        return [Authored(_item(r[0], r[2:]), r[1]) for r in rows]


def _item(iid: uuid.UUID, cols: Sequence[Any]) -> model.Item:
    """An item of its id and the item columns (actor, review, work id and title, rating, excerpt,
    genres)."""
    actor, review, work_id, work_title, rating, excerpt, genres = cols
    return model.Item(item_id=iid, actor_user_id=actor, review_id=review, work_id=work_id or "",
                      work_title=work_title or "", rating=rating or 0, excerpt=excerpt or "",
                      genre_slugs=tuple(genres or ()))
