"""The social graph in Neo4j: the Cypher of every command, event handler and query.

Nodes: (:User {user_id}), (:Work {work_id, version, kind, title, genres}), (:Genre {slug, name}) where
slug is the catalog's genre path ("fiction/science-fiction"); a work's `genres` lists the slugs of its
IN_GENRE edges. Relationships:

- (:User)-[:FOLLOWS {pair, at, in_key, out_key}]->(:User): `pair` is unique (a relationship
  uniqueness constraint, so concurrent Follows cannot duplicate the edge); `in_key` and `out_key`
  (model.in_key/out_key: user, follow time, other user) have range indexes, so a page of followers
  or of followed users is a range seek on the index, in index order, never a sort of all follows;
- (:User)-[:RATED {pair, rating, at, version, review_id}]->(:Work), unique `pair`;
- (:User)-[:INTERESTED_IN {weight}]->(:Genre), recomputed from RATED (model.interest_weights);
- (:Work)-[:IN_GENRE]->(:Genre) for each genre of the work AND each ancestor of it;
- (:Genre)-[:SUBGENRE_OF]->(:Genre);
- (:ReviewTombstone {review_id, version}): a deleted review, so a late create/update of it is ignored;
- (:FollowTombstone {pair, at}): the time of the latest unfollow of a pair, so a replayed or late
  FollowCreated of an earlier follow is ignored (the worker applies FollowCreated/FollowRemoved too).

Label namespace: with CULTURE_GRAPH_LABEL_PREFIX=P every label and relationship type above is P<name>
(`namespaced`), and the schema's names are prefixed too, so a second graph can live beside the first
in Neo4j Community's one database: `culture replay graph` rebuilds into a fresh prefix and switches
the pointer (culture_graph.pointer). The outbox label is its own setting and is not prefixed.

Times are epoch microseconds. Every query starts from a unique-index seek (a user, a work) or from a
range seek on a FOLLOWS key index (tests/graph assert the plans).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterator
from typing import Any

from neo4j import AsyncDriver, AsyncManagedTransaction
from neo4j.exceptions import ConstraintError, ServiceUnavailable, SessionExpired

from culture.events.v1 import graph_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events.codec import encode
from culture_events.outbox.neo4j import Neo4jOutbox, create_schema, driver_from_uri
from culture_graph import model
from culture_grpc.errors import Unavailable, not_found

log = logging.getLogger("culture_graph")

SCHEMA = [
    "CREATE CONSTRAINT graph_user_id IF NOT EXISTS FOR (u:User) REQUIRE u.user_id IS UNIQUE",
    "CREATE CONSTRAINT graph_work_id IF NOT EXISTS FOR (w:Work) REQUIRE w.work_id IS UNIQUE",
    "CREATE CONSTRAINT graph_genre_slug IF NOT EXISTS FOR (g:Genre) REQUIRE g.slug IS UNIQUE",
    "CREATE CONSTRAINT graph_tombstone_review IF NOT EXISTS FOR (t:ReviewTombstone) "
    "REQUIRE t.review_id IS UNIQUE",
    "CREATE CONSTRAINT graph_follows_pair IF NOT EXISTS FOR ()-[f:FOLLOWS]-() REQUIRE f.pair IS UNIQUE",
    "CREATE CONSTRAINT graph_rated_pair IF NOT EXISTS FOR ()-[r:RATED]-() REQUIRE r.pair IS UNIQUE",
    "CREATE CONSTRAINT graph_follow_tombstone_pair IF NOT EXISTS FOR (t:FollowTombstone) "
    "REQUIRE t.pair IS UNIQUE",
    "CREATE INDEX graph_follows_in IF NOT EXISTS FOR ()-[f:FOLLOWS]-() ON (f.in_key)",
    "CREATE INDEX graph_follows_out IF NOT EXISTS FOR ()-[f:FOLLOWS]-() ON (f.out_key)",
]

#: every label and relationship type of the graph (what a label prefix applies to)
NAMES = ("User", "Work", "Genre", "ReviewTombstone", "FollowTombstone", "FOLLOWS", "RATED", "INTERESTED_IN",
         "IN_GENRE", "SUBGENRE_OF")
_NAME = re.compile(r":(" + "|".join(NAMES) + r")\b")
_SCHEMA_NAME = re.compile(r"\b(CONSTRAINT|INDEX) graph_")


@functools.lru_cache(maxsize=1024)
def namespaced(cypher: str, prefix: str) -> str:
    """`cypher` with every label and relationship type of the graph prefixed (and the schema names)."""
    if not prefix:
        return cypher
    cypher = _NAME.sub(lambda m: f":{prefix}{m.group(1)}", cypher)
    return _SCHEMA_NAME.sub(lambda m: f"{m.group(1)} graph_{prefix.lower()}_", cypher)


class _Tx:
    """A transaction that runs the graph's Cypher in a label namespace."""

    def __init__(self, tx: AsyncManagedTransaction, prefix: str) -> None:
        self.tx, self.prefix = tx, prefix

    async def run(self, cypher: str, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.tx.run(namespaced(cypher, self.prefix), parameters, **kwargs)


def _raw(tx: Any) -> AsyncManagedTransaction:
    """The driver's transaction under a namespaced one (the outbox writes its own label)."""
    return tx.tx if isinstance(tx, _Tx) else tx


# -- queries (read side) ---------------------------------------------------------------------------

USER_EXISTS = "MATCH (u:User {user_id: $user_id}) RETURN count(u) AS n"

# followers of a user: a range seek on the followee-side key, newest first (the index's order: no
# sort), stops after $limit. The hint: on a small graph the planner may prefer scanning the whole
# index in order, which costs every follow of every user once the graph is big
FOLLOWERS = """
MATCH (a:User)-[f:FOLLOWS]->(b:User)
USING INDEX SEEK f:FOLLOWS(in_key)
WHERE f.in_key > $low AND f.in_key < $high
RETURN a.user_id AS follower, b.user_id AS followee, f.at AS at, f.in_key AS k
ORDER BY f.in_key DESC LIMIT $limit
"""

FOLLOWING = """
MATCH (a:User)-[f:FOLLOWS]->(b:User)
USING INDEX SEEK f:FOLLOWS(out_key)
WHERE f.out_key > $low AND f.out_key < $high
RETURN a.user_id AS follower, b.user_id AS followee, f.at AS at, f.out_key AS k
ORDER BY f.out_key DESC LIMIT $limit
"""

# followers interested in any of the genres: the same ordered range seek, filtered, stopping at
# $limit matches; a page holds at most $limit ids whatever the follower count. One record with two
# lists: thousands of one-id records cost the driver far more than the query costs the server
FOLLOWERS_INTERESTED_IN = """
MATCH (a:User)-[f:FOLLOWS]->(:User)
USING INDEX SEEK f:FOLLOWS(in_key)
WHERE f.in_key > $low AND f.in_key < $high
  AND EXISTS { MATCH (a)-[:INTERESTED_IN]->(g:Genre) WHERE g.slug IN $genres }
WITH a, f ORDER BY f.in_key DESC LIMIT $limit
RETURN collect(a.user_id) AS ids, collect(f.in_key) AS keys
"""

FRIENDS_WHO_LIKED = """
MATCH (w:Work {work_id: $work_id})<-[r:RATED]-(friend:User)<-[:FOLLOWS]-(me:User {user_id: $user_id})
WHERE r.rating >= $min_rating
  AND ($after IS NULL OR r.rating < $after[0]
       OR (r.rating = $after[0] AND (r.at < $after[1] OR (r.at = $after[1] AND friend.user_id > $after[2]))))
RETURN friend.user_id AS user_id, r.rating AS rating, r.at AS at
ORDER BY rating DESC, at DESC, user_id ASC LIMIT $limit
"""

# similarity with everyone who rated one of my most recent $max_ratings works (model.similarity)
SIMILAR = """
MATCH (me:User {user_id: $user_id})-[mine:RATED]->(w:Work)
WITH me, mine, w ORDER BY mine.at DESC LIMIT $max_ratings
MATCH (w)<-[theirs:RATED]-(other:User)
WHERE other <> me
WITH other, count(*) AS common,
     avg(1.0 - abs(mine.rating - theirs.rating) / toFloat($scale)) AS similarity
RETURN other.user_id AS user_id, similarity, common
ORDER BY similarity DESC, common DESC, user_id ASC SKIP $offset LIMIT $limit
"""

SHARED_GENRES = """
MATCH (me:User {user_id: $user_id})-[:INTERESTED_IN]->(g:Genre)
WITH g
MATCH (g)<-[:INTERESTED_IN]-(other:User)
WHERE other.user_id IN $others
RETURN other.user_id AS user_id, g.slug AS slug ORDER BY slug
"""

# what Recommend needs to know about the user first: its genres of interest and every rating of it
MY_TASTE = """
MATCH (me:User {user_id: $user_id})
RETURN COLLECT { MATCH (me)-[:INTERESTED_IN]->(g:Genre) RETURN g.slug AS slug ORDER BY slug } AS genres,
       COLLECT { MATCH (me)-[m:RATED]->(w:Work) RETURN [w.work_id, m.rating] } AS ratings
"""

# people 1-3 follows away (a breadth-first expansion pruned to each person's shortest distance; the
# closest $max_people), what they rated: the ratings of works I rated give their similarity to me
# ($mine: work id -> my rating; model.similarity), those of other works at least $min_rating are
# the candidates, each weighted by model.contribution; the genre filter runs once per work, on the
# work's `genres` list (its IN_GENRE slugs, kept beside the edges: one property read, no expansion)
RECOMMEND = """
MATCH (me:User {user_id: $user_id})
MATCH path = (me)-[:FOLLOWS*1..3]->(person:User)
WHERE person <> me
WITH person, min(length(path)) AS hops
ORDER BY hops, person.user_id LIMIT $max_people
MATCH (person)-[r:RATED]->(w:Work)
WITH person, hops, collect([w, r.rating, $mine[w.work_id]]) AS rows
WITH person, hops, rows,
     [x IN rows WHERE x[2] IS NOT NULL | 1.0 - abs(x[1] - x[2]) / toFloat($scale)] AS agree
WITH person, hops, rows,
     CASE size(agree) WHEN 0 THEN 0.0 ELSE reduce(s = 0.0, a IN agree | s + a) / size(agree) END AS sim
UNWIND rows AS x
WITH person, hops, sim, x WHERE x[2] IS NULL AND x[1] >= $min_rating
WITH x[0] AS w, person.user_id AS who, (1.0 + sim) * x[1] / toFloat($scale_max) / hops AS c
WITH w, sum(c) AS score, collect([c, who]) AS contributions
WITH w, score, contributions, [s IN w.genres WHERE s IN $genres] AS genres
WHERE $any_genre OR size(genres) > 0
WITH w, score, contributions, genres
ORDER BY score DESC, w.work_id ASC SKIP $offset LIMIT $limit
RETURN w.work_id AS work_id, score, genres,
       COLLECT { UNWIND contributions AS x WITH x ORDER BY x[0] DESC, x[1] ASC LIMIT 5 RETURN x[1] }
       AS recommenders
"""

# -- commands and event handlers (write side) ------------------------------------------------------

USERS_EXIST = """
UNWIND $ids AS id
OPTIONAL MATCH (u:User {user_id: id})
RETURN id, u IS NOT NULL AS found
"""

FOLLOW_GET = """
OPTIONAL MATCH (a:User)-[f:FOLLOWS {pair: $pair}]->(b:User)
OPTIONAL MATCH (t:FollowTombstone {pair: $pair})
RETURN f.at AS at, t.at AS removed_at
"""

FOLLOW_CREATE = """
MATCH (a:User {user_id: $follower}), (b:User {user_id: $followee})
CREATE (a)-[:FOLLOWS {pair: $pair, at: $at, in_key: $in_key, out_key: $out_key}]->(b)
"""

UNFOLLOW = """
MATCH (:User)-[f:FOLLOWS {pair: $pair}]->(:User)
WITH f, f.at AS at
DELETE f
RETURN at
"""

# the latest unfollow time of a pair (kept, so an older FollowCreated replayed later is ignored)
FOLLOW_TOMBSTONE = """
MERGE (t:FollowTombstone {pair: $pair})
SET t.at = CASE WHEN coalesce(t.at, 0) > $at THEN t.at ELSE $at END
"""

# FollowCreated (worker, replay): the edge with the event's time, unless an unfollow at or after that
# time is known or the edge already has this time or a later one
FOLLOW_APPLY = """
MERGE (a:User {user_id: $follower})
MERGE (b:User {user_id: $followee})
WITH a, b
OPTIONAL MATCH (t:FollowTombstone {pair: $pair})
WITH a, b, t WHERE t IS NULL OR t.at < $at
MERGE (a)-[f:FOLLOWS {pair: $pair}]->(b)
ON CREATE SET f.at = $at, f.in_key = $in_key, f.out_key = $out_key
WITH f WHERE f.at < $at
SET f.at = $at, f.in_key = $in_key, f.out_key = $out_key
"""

# FollowRemoved (worker, replay): the tombstone, and the edge removed unless it is a later follow's
UNFOLLOW_APPLY = FOLLOW_TOMBSTONE + """
WITH t
OPTIONAL MATCH (:User)-[f:FOLLOWS {pair: $pair}]->(:User)
WITH f WHERE f IS NOT NULL AND f.at <= $at
DELETE f
RETURN count(*) AS removed
"""

USER_UPSERT = """
MERGE (u:User {user_id: $user_id})
ON CREATE SET u.registered_at = $at
ON MATCH SET u.registered_at = coalesce(u.registered_at, $at)
"""

GENRES_UPSERT = """
UNWIND $genres AS g
MERGE (x:Genre {slug: g.slug}) ON CREATE SET x.name = g.name
WITH x, g WHERE g.parent IS NOT NULL
MATCH (p:Genre {slug: g.parent})
MERGE (x)-[:SUBGENRE_OF]->(p)
"""

# a work event applies only when newer than what the node has (version): out of order is harmless
WORK_UPSERT = """
MERGE (w:Work {work_id: $work_id})
WITH w WHERE coalesce(w.version, 0) < $version
SET w.version = $version, w.kind = $kind, w.title = $title
RETURN w.work_id AS work_id
"""

WORK_GENRES = """
MATCH (w:Work {work_id: $work_id})
SET w.genres = $slugs
WITH w
OPTIONAL MATCH (w)-[old:IN_GENRE]->(:Genre)
DELETE old
WITH DISTINCT w
UNWIND $slugs AS slug
MATCH (g:Genre {slug: slug})
MERGE (w)-[:IN_GENRE]->(g)
"""

# a work known only from a review gets the review's genres (until its own event, which wins)
WORK_FROM_REVIEW = """
MERGE (w:Work {work_id: $work_id})
WITH w WHERE w.version IS NULL AND NOT EXISTS { (w)-[:IN_GENRE]->(:Genre) }
SET w.genres = $slugs
WITH w
UNWIND $slugs AS slug
MATCH (g:Genre {slug: slug})
MERGE (w)-[:IN_GENRE]->(g)
"""

# the user's write lock (a property written and removed): the rating changes of one user take turns,
# so each recomputation of the interests reads every rating the others committed (read committed
# alone would let two concurrent reviews each recompute without the other's rating)
USER_LOCK = """
MERGE (u:User {user_id: $user_id})
SET u._lock = true
REMOVE u._lock
"""

TOMBSTONE_VERSION = "MATCH (t:ReviewTombstone {review_id: $review_id}) RETURN t.version AS version"

RATED_UPSERT = """
MERGE (u:User {user_id: $user_id})
WITH u
MATCH (w:Work {work_id: $work_id})
MERGE (u)-[r:RATED {pair: $pair}]->(w)
WITH r WHERE r.version IS NULL
   OR (r.review_id = $review_id AND r.version < $version)
   OR (r.review_id <> $review_id AND r.at <= $at)
SET r.rating = $rating, r.at = $at, r.version = $version, r.review_id = $review_id
RETURN count(r) AS changed
"""

RATED_DELETE = """
MERGE (t:ReviewTombstone {review_id: $review_id})
SET t.version = CASE WHEN coalesce(t.version, 0) > $version THEN t.version ELSE $version END
WITH t
OPTIONAL MATCH (:User {user_id: $user_id})-[r:RATED {pair: $pair}]->(:Work)
WITH r WHERE r IS NOT NULL AND r.review_id = $review_id AND r.version < $version
DELETE r
RETURN count(*) AS removed
"""

USER_RATINGS_BY_GENRE = """
MATCH (u:User {user_id: $user_id})-[r:RATED]->(:Work)-[:IN_GENRE]->(g:Genre)
RETURN g.slug AS genre, r.rating AS rating, r.at AS at
"""

USER_INTERESTS = """
MATCH (:User {user_id: $user_id})-[:INTERESTED_IN]->(g:Genre)
RETURN g.slug AS slug
"""

INTERESTS_REPLACE = """
MATCH (u:User {user_id: $user_id})
OPTIONAL MATCH (u)-[old:INTERESTED_IN]->(:Genre)
DELETE old
WITH DISTINCT u
UNWIND $weights AS x
MATCH (g:Genre {slug: x.slug})
CREATE (u)-[:INTERESTED_IN {weight: x.weight}]->(g)
"""


class GraphStore:
    """The graph service's Neo4j database: schema, commands with their outbox events, queries."""

    def __init__(self, uri: str, *, database: str = "neo4j", outbox_label: str = "GraphOutbox",
                 topic: Any = lambda t: t, label_prefix: str = "") -> None:
        self.uri = uri
        self.database = database
        self.prefix = label_prefix
        self.outbox = Neo4jOutbox(outbox_label, database)
        self.created_topic = topic(topic_of(graph_events_pb2.FollowCreated))
        self.removed_topic = topic(topic_of(graph_events_pb2.FollowRemoved))
        self.interests_topic = topic(topic_of(graph_events_pb2.InterestsGained))
        self.driver: AsyncDriver | None = None

    async def connect(self) -> None:
        """Connect; create constraints and indexes (idempotent, safe from every replica at once)."""
        self.driver = driver_from_uri(self.uri)
        await self.driver.verify_connectivity()
        await create_schema(self.driver, [namespaced(c, self.prefix) for c in SCHEMA], self.database)
        await self.outbox.ensure_schema(self.driver)

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.close()
        self.driver = None

    def _driver(self) -> AsyncDriver:
        assert self.driver is not None, "GraphStore.connect() first"
        return self.driver

    async def read(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        """Run a query on a read session; its records as dicts. UNAVAILABLE while Neo4j is away."""
        with _unavailable():
            records, _, _ = await self._driver().execute_query(namespaced(cypher, self.prefix), params,
                                                                database_=self.database, routing_="r")
        return [dict(r) for r in records]

    async def _write(self, work: Any, *args: Any) -> Any:
        with _unavailable():
            async with self._driver().session(database=self.database) as session:
                return await session.execute_write(lambda tx: work(_Tx(tx, self.prefix), *args))

    # -- commands ----------------------------------------------------------------------------------

    @staticmethod
    async def _require_users(tx: AsyncManagedTransaction, fields: dict[str, str]) -> None:
        result = await tx.run(USERS_EXIST, ids=list(fields.values()))
        found = {r["id"]: r["found"] async for r in result}
        for user_id in fields.values():
            if not found.get(user_id):
                raise not_found("user", user_id)

    async def follow(self, follower: str, followee: str) -> tuple[int, bool]:
        """(follow time in epoch us, whether this call created it). NOT_FOUND for an unknown user."""
        pair = model.pair_key(follower, followee)

        async def body(tx: AsyncManagedTransaction) -> tuple[int, bool]:
            await self._require_users(tx, {"follower_user_id": follower, "followee_user_id": followee})
            existing = await (await tx.run(FOLLOW_GET, pair=pair)).single()
            if existing is not None and existing["at"] is not None:
                return int(existing["at"]), False
            # after the pair's last unfollow even when this replica's clock is behind: the events' times
            # order a pair's follows and unfollows (what the worker and a replay go by)
            removed_at = existing["removed_at"] if existing is not None else None
            at = max(model.now_us(), int(removed_at or 0) + 1)
            await (await tx.run(FOLLOW_CREATE, follower=follower, followee=followee, pair=pair, at=at,
                                in_key=model.in_key(follower, followee, at),
                                out_key=model.out_key(follower, followee, at))).consume()
            event = graph_events_pb2.FollowCreated(follower_user_id=follower, followee_user_id=followee,
                                                   create_time=model.to_timestamp(at))
            outbox = self.outbox.publisher(_raw(tx))
            await outbox.publish(self.created_topic, encode(event, key=key_of(event)))
            return at, True

        try:
            return await self._write(body)
        except ConstraintError:  # a concurrent Follow of the same pair committed first: it exists now
            return await self._write(body)

    async def unfollow(self, follower: str, followee: str) -> bool:
        """Whether this call removed the follow. NOT_FOUND for an unknown user."""
        pair = model.pair_key(follower, followee)

        async def body(tx: AsyncManagedTransaction) -> bool:
            await self._require_users(tx, {"follower_user_id": follower, "followee_user_id": followee})
            record = await (await tx.run(UNFOLLOW, pair=pair)).single()
            if not record:
                return False
            removed_at = max(model.now_us(), int(record["at"] or 0) + 1)
            await _consume(tx, FOLLOW_TOMBSTONE, pair=pair, at=removed_at)
            event = graph_events_pb2.FollowRemoved(follower_user_id=follower, followee_user_id=followee,
                                                   remove_time=model.to_timestamp(removed_at))
            outbox = self.outbox.publisher(_raw(tx))
            await outbox.publish(self.removed_topic, encode(event, key=key_of(event)))
            return True

        return await self._write(body)

    # -- event handlers (idempotent) ---------------------------------------------------------------

    async def upsert_user(self, user_id: str, at: int) -> None:
        await self._write(lambda tx: _consume(tx, USER_UPSERT, user_id=user_id, at=at))

    async def apply_follow(self, follower: str, followee: str, at: int) -> None:
        """A FollowCreated: the edge with the follow's time (unless a later unfollow is known)."""
        pair = model.pair_key(follower, followee)
        in_key, out_key = model.in_key(follower, followee, at), model.out_key(follower, followee, at)
        await self._write(lambda tx: _consume(tx, FOLLOW_APPLY, follower=follower, followee=followee,
                                              pair=pair, at=at, in_key=in_key, out_key=out_key))

    async def apply_unfollow(self, follower: str, followee: str, at: int) -> None:
        """A FollowRemoved: its tombstone; the edge removed unless it is from a later follow."""
        await self._write(lambda tx: _consume(tx, UNFOLLOW_APPLY, pair=model.pair_key(follower, followee),
                                              at=at))

    async def upsert_work(self, work_id: str, version: int, kind: str, title: str,
                          genre_paths: list[str]) -> bool:
        """Apply a WorkCreated/WorkUpdated; False when the node already has this version or a newer one."""
        genres = model.genre_closure(genre_paths)

        async def body(tx: AsyncManagedTransaction) -> bool:
            await _consume(tx, GENRES_UPSERT, genres=genres)
            record = await (await tx.run(WORK_UPSERT, work_id=work_id, version=version, kind=kind,
                                         title=title)).single()
            if record is None:
                return False
            await _consume(tx, WORK_GENRES, work_id=work_id, slugs=[g["slug"] for g in genres])
            return True

        return await self._write(body)

    async def apply_rating(self, *, review_id: str, user_id: str, work_id: str, rating: int, at: int,
                           version: int, genre_paths: list[str]) -> bool:
        """A review created or updated: the RATED edge (unless a newer state is known) and the user's
        interests. False when the event was stale (nothing changed)."""
        genres = model.genre_closure(genre_paths)

        async def body(tx: AsyncManagedTransaction) -> bool:
            await _consume(tx, USER_LOCK, user_id=user_id)
            tomb = await (await tx.run(TOMBSTONE_VERSION, review_id=review_id)).single()
            if tomb is not None and tomb["version"] >= version:
                return False  # deleted after this version was written
            await _consume(tx, GENRES_UPSERT, genres=genres)
            await _consume(tx, WORK_FROM_REVIEW, work_id=work_id, slugs=[g["slug"] for g in genres])
            record = await (await tx.run(
                RATED_UPSERT, user_id=user_id, work_id=work_id, pair=model.pair_key(user_id, work_id),
                review_id=review_id, version=version, rating=rating, at=at)).single()
            changed = bool(record and record["changed"])
            if changed:
                await self._recompute_interests(tx, user_id)
            return changed

        return await self._write(body)

    async def remove_rating(self, *, review_id: str, user_id: str, work_id: str, version: int) -> bool:
        """A review deleted: a tombstone (so late events of it are ignored), the RATED edge removed."""
        async def body(tx: AsyncManagedTransaction) -> bool:
            await _consume(tx, USER_LOCK, user_id=user_id)
            record = await (await tx.run(RATED_DELETE, review_id=review_id, user_id=user_id, version=version,
                                         pair=model.pair_key(user_id, work_id))).single()
            removed = bool(record and record["removed"])
            if removed:
                await self._recompute_interests(tx, user_id)
            return removed

        return await self._write(body)

    async def _recompute_interests(self, tx: AsyncManagedTransaction, user_id: str) -> list[str]:
        """The user's INTERESTED_IN edges from their ratings; the genres newly gained are published
        (InterestsGained, in this transaction's outbox) so the feed copies what fan-outs that asked the
        graph before this change left out. The genres gained, sorted."""
        before = {r["slug"] async for r in await tx.run(USER_INTERESTS, user_id=user_id)}
        result = await tx.run(USER_RATINGS_BY_GENRE, user_id=user_id)
        rows = [(r["genre"], int(r["rating"]), int(r["at"])) async for r in result]
        weights = model.interest_weights(rows)
        await _consume(tx, INTERESTS_REPLACE, user_id=user_id,
                       weights=[{"slug": g, "weight": w} for g, w in weights.items()])
        gained = sorted(set(weights) - before)
        if gained:
            event = graph_events_pb2.InterestsGained(user_id=user_id, genre_slugs=gained,
                                                     change_time=model.to_timestamp(model.now_us()))
            outbox = self.outbox.publisher(_raw(tx))
            await outbox.publish(self.interests_topic, encode(event, key=key_of(event)))
        return gained

    async def user_exists(self, user_id: str) -> bool:
        return bool((await self.read(USER_EXISTS, user_id=user_id))[0]["n"])


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Neo4j unreachable (after the driver's own retries): UNAVAILABLE, which callers may retry."""
    try:
        yield
    except (ServiceUnavailable, SessionExpired) as exc:
        raise Unavailable(f"the graph database is unavailable ({exc}); retry shortly") from exc


async def _consume(tx: AsyncManagedTransaction, cypher: str, **params: Any) -> None:
    await (await tx.run(cypher, params)).consume()


async def drop_namespace(driver: AsyncDriver, prefix: str, database: str = "neo4j") -> None:
    """Delete the graph of label prefix `prefix` (not ""): its nodes, in batches, and its schema."""
    if not prefix:
        raise ValueError("drop_namespace: the unprefixed graph is not dropped this way")
    for name in ("User", "Work", "Genre", "ReviewTombstone", "FollowTombstone"):
        while True:
            records, _, _ = await driver.execute_query(
                f"MATCH (n:`{prefix}{name}`) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS n",
                database_=database)
            if not records or not records[0]["n"]:
                break
    own = f"graph_{prefix.lower()}_"
    for kind in ("CONSTRAINT", "INDEX"):
        records, _, _ = await driver.execute_query(f"SHOW {kind}ES YIELD name" if kind == "INDEX"
                                                   else f"SHOW {kind}S YIELD name", database_=database)
        for r in records:
            if str(r["name"]).startswith(own):
                await driver.execute_query(f"DROP {kind} `{r['name']}` IF EXISTS", database_=database)
