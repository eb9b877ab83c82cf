"""The consistency check's reads: the write models and the read models of a scope of users, from the
servers the services use, with the settings the services read (CULTURE_* environment variables:
PlatformSettings for the endpoints, each service's own settings for its schema, database, keyspace).

Every read is scoped by user ids (a shared installation holds other users' data too): the users
come from identity (`Scope`: a set of ids, a registration time, a username prefix), everything else
is asked for those ids only. The comparison itself is `culture_cli.consistency` (pure).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culture_cli.consistency import FeedItem, Follow, Job, ReadModels, Review, User, WriteModel
from culture_runtime.settings import PlatformSettings

_UNSAFE = re.compile(r"[^a-z0-9@._+=-]")  # the SMTP sink's mailbox directory names (local stack)


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which users to check (every condition given must hold)."""

    user_ids: tuple[str, ...] = ()
    since: dt.datetime | None = None
    username_prefix: str = ""

    def describe(self) -> str:
        parts = []
        if self.user_ids:
            parts.append(f"{len(self.user_ids)} user ids")
        if self.since is not None:
            parts.append(f"registered since {self.since.isoformat()}")
        if self.username_prefix:
            parts.append(f"usernames starting with {self.username_prefix!r}")
        return " and ".join(parts) or "every user"


@dataclasses.dataclass
class Sources:
    """Where each model lives (the services' settings)."""

    platform: PlatformSettings
    identity_schema: str = "public"
    catalog_database: str = "catalog"
    graph_database: str = "neo4j"
    feed_keyspace: str = "culture_feed"
    feed_protocol_version: int = 5
    smtp_spool: Path | None = None
    #: read the keyspace a rebuild switched the feed to (culture_feed.pointer), as the feed roles do
    follow_feed_pointer: bool = True
    #: the graph's label prefix (CULTURE_GRAPH_LABEL_PREFIX) ...
    graph_label_prefix: str = ""
    #: ... or the one a rebuild switched the graph to (culture_graph.pointer), as the graph roles do
    follow_graph_pointer: bool = True

    @classmethod
    def from_env(cls, platform: PlatformSettings | None = None, smtp_spool: Path | None = None) -> Sources:
        from culture_catalog.settings import CatalogSettings
        from culture_feed.settings import FeedSettings
        from culture_graph.settings import GraphSettings
        from culture_identity.settings import IdentitySettings

        feed, graph = FeedSettings(), GraphSettings()
        return cls(platform or PlatformSettings(), IdentitySettings().db_schema, CatalogSettings().database,
                   graph.database, feed.keyspace, feed.protocol_version, smtp_spool,
                   graph_label_prefix=graph.label_prefix)


def _micros(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(int(value) / 1e6, dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def read_users(src: Sources, scope: Scope) -> list[User]:
    import asyncpg

    where, args = [], []
    if scope.user_ids:
        args.append(list(scope.user_ids))
        where.append(f"user_id::text = ANY(${len(args)}::text[])")
    if scope.since is not None:
        args.append(scope.since)
        where.append(f"created_at >= ${len(args)}")
    if scope.username_prefix:
        args.append(scope.username_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        where.append(f"username LIKE ${len(args)}")
    sql = (f'SELECT user_id::text AS user_id, username, email FROM "{src.identity_schema}".identity_users'
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY user_id")
    conn = await asyncpg.connect(src.platform.postgres_dsn, timeout=15)
    try:
        rows = await conn.fetch(sql, *args)
    finally:
        await conn.close()
    return [User(r["user_id"], r["username"], r["email"]) for r in rows]


async def read_catalog(src: Sources, ids: list[str]) -> tuple[list[Review], list[str]]:
    """(the users' reviews, the user id of each of their profiles)."""
    from motor.motor_asyncio import AsyncIOMotorClient

    client: Any = AsyncIOMotorClient(src.platform.mongo_uri, serverSelectionTimeoutMS=10000, tz_aware=True)
    try:
        db = client[src.catalog_database]
        fields = {"author_user_id": 1, "genre_paths": 1, "create_time": 1}
        reviews = [Review(d["_id"], d["author_user_id"], tuple(d.get("genre_paths", [])),
                          _utc(d.get("create_time")))
                   async for d in db["reviews"].find({"author_user_id": {"$in": ids}}, fields)]
        profiles = [d["_id"] async for d in db["profiles"].find({"_id": {"$in": ids}}, {"_id": 1})]
    finally:
        client.close()
    return reviews, profiles


async def read_graph(src: Sources, ids: list[str]) -> dict[str, Any]:
    """follows (write model) and the graph's read model of the users."""
    from culture_events.outbox.neo4j import driver_from_uri
    from culture_graph.pointer import read_pointer
    from culture_graph.store import namespaced

    prefix = src.graph_label_prefix
    if src.follow_graph_pointer:
        target = await read_pointer(src.platform.neo4j_uri or "", src.graph_database, prefix)
        prefix = target[0] if target is not None else prefix
    driver = driver_from_uri(src.platform.neo4j_uri or "", notifications_min_severity="OFF")
    try:
        async def q(cypher: str) -> list[Any]:
            result = await driver.execute_query(namespaced(cypher, prefix), ids=ids,
                                                database_=src.graph_database)
            return list(result.records)

        follows = [Follow(r["a"], r["b"], _micros(r["at"])) for r in await q(
            "MATCH (a:User)-[f:FOLLOWS]->(b:User) WHERE a.user_id IN $ids "
            "RETURN a.user_id AS a, b.user_id AS b, f.at AS at")]
        users = [r["u"] for r in await q("MATCH (u:User) WHERE u.user_id IN $ids RETURN u.user_id AS u")]
        ratings = [r["r"] for r in await q(
            "MATCH (u:User)-[x:RATED]->(:Work) WHERE u.user_id IN $ids RETURN x.review_id AS r")]
        interests: dict[str, set[str]] = {}
        for r in await q("MATCH (u:User)-[:INTERESTED_IN]->(g:Genre) WHERE u.user_id IN $ids "
                         "RETURN u.user_id AS u, g.slug AS g"):
            interests.setdefault(r["u"], set()).add(r["g"])
    finally:
        await driver.close()
    return {"follows": follows, "users": users, "ratings": ratings, "interests": interests}


def read_feed(src: Sources, ids: list[str], review_ids: list[str]) -> dict[str, Any]:
    """The feed's read model of the users (blocking: run it in a thread)."""
    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.policies import RoundRobinPolicy

    points = [p.strip() for p in (src.platform.cassandra_contact_points or "").split(",") if p.strip()]
    cluster = Cluster(points, port=src.platform.cassandra_port, protocol_version=src.feed_protocol_version,
                      connect_timeout=15, load_balancing_policy=RoundRobinPolicy())
    try:
        session = cluster.connect()
        session.default_timeout = 30
        ks = src.feed_keyspace
        if src.follow_feed_pointer:
            from culture_feed.pointer import read_pointer

            target = read_pointer(session, ks)
            ks = target[0] if target else ks
        if session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                           (ks,)).one() is None:
            raise LookupError(f"the feed keyspace {ks!r} does not exist (CULTURE_FEED_KEYSPACE)")

        def each(cql: str, params: Sequence[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], list[Any]]]:
            stmt = session.prepare(cql)
            results = execute_concurrent_with_args(session, stmt, params, concurrency=64,
                                                   raise_on_first_error=True)
            return [(p, list(r.result_or_exc)) for p, r in zip(params, results, strict=True)]

        users = [(u,) for u in ids]
        rows = [p[0] for p, res in each(f"SELECT user_id FROM {ks}.feeds WHERE user_id = ?", users) if res]
        authored = [p[0] for p, res in each(f"SELECT deleted FROM {ks}.reviews WHERE review_id = ?",
                                            [(r,) for r in review_ids])
                    if res and not res[0].deleted]
        following = [(p[0], r.followee_user_id) for p, res in each(
            f"SELECT followee_user_id FROM {ks}.following WHERE user_id = ?", users) for r in res]
        buckets = [(p[0], r.bucket) for p, res in each(
            f"SELECT bucket FROM {ks}.timeline_buckets WHERE user_id = ?", users) for r in res]
        items = [FeedItem(p[0], r.review_id, r.actor_user_id) for p, res in each(
            f"SELECT review_id, actor_user_id FROM {ks}.timeline WHERE user_id = ? AND bucket = ?", buckets)
            for r in res]
        celebrities = {r.author_user_id
                       for r in session.execute(f"SELECT author_user_id FROM {ks}.celebrities")}
    finally:
        cluster.shutdown()
    return {"rows": rows, "authored": authored, "following": following, "items": items,
            "celebrities": celebrities}


async def read_redis(src: Sources, ids: list[str]) -> tuple[dict[str, str], list[Job]]:
    """(the mailer ledger's state per user, the registration jobs of the users)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(src.platform.redis_url or "", decode_responses=True)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for u in ids:
                pipe.hget(f"mailer:welcome:{u}", "state")
            states = await pipe.execute()
        mails = {u: s for u, s in zip(ids, states, strict=True) if s is not None}
        # jobs are keyed by job id (the registration's correlation id, known only to the client and the
        # events): walk the job keys and keep those of the users in scope
        wanted, keys = set(ids), []
        async for key in client.scan_iter(match="notifier:job:*", count=2000):
            keys.append(key)
        jobs = []
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            async with client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hmget(key, "user_id", "steps")
                heads = await pipe.execute()
            mine = [(k, h) for k, h in zip(chunk, heads, strict=True)
                    if h[0] in wanted and "account" in (h[1] or "").split(",")]
            async with client.pipeline(transaction=False) as pipe:
                for key, _ in mine:
                    pipe.hgetall(key)
                fields = await pipe.execute()
            for (key, head), f in zip(mine, fields, strict=True):
                steps = {n: f.get(f"step:{n}:state", "pending") for n in (head[1] or "").split(",") if n}
                jobs.append(Job(key.removeprefix("notifier:job:"), head[0], steps))
    finally:
        await client.aclose()
    return mails, jobs


def read_spool(spool: Path, users: Sequence[User]) -> dict[str, int]:
    """Distinct Message-IDs per recipient in the local stack's SMTP sink (`<spool>/<address>/*.eml`)."""
    out = {}
    for u in users:
        address = u.email.strip().lower()
        box = spool / (_UNSAFE.sub("_", address) or "_")
        ids = set()
        for path in box.glob("*.eml") if box.is_dir() else []:
            with path.open("rb") as f:
                mail = email.message_from_binary_file(f, policy=email.policy.default)
            ids.add(str(mail.get("Message-ID", path.name)).strip())
        out[address] = len(ids)
    return out


async def gather(src: Sources, scope: Scope, models: Sequence[str]) -> tuple[WriteModel, ReadModels]:
    """The write models of the scope and the read models named in `models` (consistency.MODELS)."""
    users = await read_users(src, scope)
    ids = [u.user_id for u in users]
    (reviews, profiles), graph = await asyncio.gather(read_catalog(src, ids), read_graph(src, ids))
    write = WriteModel(users, reviews, graph["follows"])
    read = ReadModels()
    if "profiles" in models:
        read.profiles = profiles
    if "graph" in models:
        read.graph_users, read.graph_ratings = graph["users"], graph["ratings"]
    read.interests = graph["interests"]
    if "feed" in models:
        feed = await asyncio.to_thread(read_feed, src, ids, [r.review_id for r in reviews])
        read.feed_rows, read.feed_authored = feed["rows"], feed["authored"]
        read.feed_following, read.feed_items = feed["following"], feed["items"]
        read.celebrities = feed["celebrities"]
    if "mails" in models or "jobs" in models:
        mails, jobs = await read_redis(src, ids)
        if "mails" in models:
            read.mails = mails
            if src.smtp_spool is not None:
                read.mail_files = await asyncio.to_thread(read_spool, src.smtp_spool, users)
        if "jobs" in models:
            read.jobs = jobs
    return write, read
