"""The feed's Cassandra store: schema migrations, the timelines, the authors' own reviews, the follow
mirror and the feed rows. The driver is threaded; every call here is bridged to asyncio (single
statements through `execute_async`, batches through `execute_concurrent` in a worker thread), so the
event loop never blocks on Cassandra.

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
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from culture_feed import model
from culture_feed.settings import FeedSettings

log = logging.getLogger("culture_feed")

_ITEM_COLUMNS = "actor_user_id text, review_id text, work_id text, work_title text, rating int, " \
                "excerpt text, genre_slugs list<text>"


def _tables(settings: FeedSettings) -> dict[str, str]:
    ttl = settings.item_ttl_days * 86400
    window = max(1, settings.item_ttl_days // 30) if ttl else 30
    timeseries = (f"CLUSTERING ORDER BY (item_id DESC) AND default_time_to_live = {ttl} AND compaction = "
                  f"{{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', "
                  f"'compaction_window_size': {window}}}")
    return {
        "meta": "CREATE TABLE IF NOT EXISTS {ks}.meta (name text PRIMARY KEY, value text)",
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


def _bridge(future: Any) -> asyncio.Future[Any]:
    """An asyncio future of a cassandra-driver ResponseFuture (its first page of rows)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[Any] = loop.create_future()

    def done(rows: Any) -> None:
        loop.call_soon_threadsafe(lambda: out.done() or out.set_result(rows))

    def failed(exc: BaseException) -> None:
        loop.call_soon_threadsafe(lambda: out.done() or out.set_exception(exc))

    future.add_callbacks(done, failed)
    return out


class FeedStore:
    """The feed's tables in one keyspace."""

    def __init__(self, contact_points: str, port: int, settings: FeedSettings) -> None:
        self.contact_points = [h.strip() for h in contact_points.split(",") if h.strip()]
        self.port = port
        self.settings = settings
        self.ks = settings.keyspace
        self.cluster: Any = None
        self.session: Any = None
        self._prepared: dict[str, Any] = {}
        self._indexed: set[tuple[str, int]] = set()

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

        policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.settings.local_dc))
        profile = ExecutionProfile(load_balancing_policy=policy,
                                   request_timeout=self.settings.request_timeout_seconds)
        self.cluster = Cluster(self.contact_points, port=self.port,
                               protocol_version=self.settings.protocol_version,
                               # back within seconds of Cassandra's return (the default waits up to 10 min)
                               reconnection_policy=ExponentialReconnectionPolicy(0.5, 10.0),
                               execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        self.session = self.cluster.connect()
        self.session.default_fetch_size = None  # every read here is bounded by a LIMIT or a partition
        self._migrate()
        self._prepare()

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
        for name, ddl in _tables(s).items():
            if name not in existing:
                log.info("feed: creating table %s.%s", self.ks, name)
                self.session.execute(ddl.replace("{ks}", self.ks), timeout=60)
        # the bucket span is part of the data's layout: a different one would hide items
        self.session.execute(f"INSERT INTO {self.ks}.meta (name, value) VALUES ('bucket_seconds', %s) "
                             "IF NOT EXISTS", (str(s.bucket_seconds),))
        row = self.session.execute(f"SELECT value FROM {self.ks}.meta WHERE name = 'bucket_seconds'").one()
        if row is not None and row.value != str(s.bucket_seconds):
            raise SystemExit(f"feed: keyspace {self.ks} was created with bucket_seconds={row.value}, "
                             f"CULTURE_FEED_BUCKET_SECONDS says {s.bucket_seconds}; they must agree")

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
            "authored_buckets": f"SELECT bucket FROM {ks}.authored_buckets WHERE author_user_id = ? "
                                "AND bucket <= ? LIMIT ?",
            "authored_page": f"SELECT item_id, source_event_id, {cols} FROM {ks}.authored "
                             "WHERE author_user_id = ? AND bucket = ? AND item_id <= ? LIMIT ?",
        }
        self._prepared = {name: self.session.prepare(cql) for name, cql in statements.items()}

    async def close(self) -> None:
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.shutdown)
            self.cluster = self.session = None

    # -- plumbing -------------------------------------------------------------------------------

    async def _run(self, name: str, params: Sequence[Any]) -> list[Any]:
        rows = await _bridge(self.session.execute_async(self._prepared[name], params))
        return list(rows or [])

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
                    want: int) -> list[Any]:
        """The newest `want` rows at or below `upper` of a bucketed partition set, newest first.

        The page of the likeliest newest bucket (the current one, or the cursor's) is read at the same
        time as the list of buckets: usually it is the first one, and a page costs one round trip."""
        top = self.bucket(upper)
        guess = min(top, self.bucket(model.bound_id(model.uuid_ticks(dt.datetime.now(dt.UTC)))))
        early: asyncio.Future[list[Any]] | None = asyncio.ensure_future(
            self._run(page_stmt, (key, guess, upper, want)))
        rows: list[Any] = []
        scanned = 0
        try:
            while len(rows) < want:
                buckets = [r.bucket for r in await self._run(buckets_stmt, (key, top, 16))]
                for b in buckets:
                    if early is not None and b == guess:
                        part, early = (await early)[:want - len(rows)], None
                    else:
                        part = await self._run(page_stmt, (key, b, upper, want - len(rows)))
                    rows += part
                    if len(rows) >= want:
                        return rows
                scanned += len(buckets)
                if len(buckets) < 16 or scanned >= 4096:
                    return rows
                top = buckets[-1] - 1
            return rows
        finally:
            if early is not None:  # not needed: let it go (its outcome retrieved, never raised)
                early.cancel()
                early.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def timeline(self, user_id: str, upper: uuid.UUID, want: int) -> list[model.Item]:
        rows = await self._walk("buckets", "page", user_id, upper, want)
        return [_item(r, r.item_id) for r in rows]

    async def authored_items(self, author: str, upper: uuid.UUID, want: int) -> list[Authored]:
        rows = await self._walk("authored_buckets", "authored_page", author, upper, want)
        return [Authored(_item(r, r.item_id), r.source_event_id) for r in rows]


def _item(row: Any, iid: uuid.UUID) -> model.Item:
    return model.Item(item_id=iid, actor_user_id=row.actor_user_id, review_id=row.review_id,
                      work_id=row.work_id or "", work_title=row.work_title or "", rating=row.rating or 0,
                      excerpt=row.excerpt or "", genre_slugs=tuple(row.genre_slugs or ()))
