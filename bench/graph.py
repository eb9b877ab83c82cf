"""The graph's queries on a generated social graph in the stack's Neo4j: through gRPC (`culture serve
graph --role api-read`) and the same Cypher through the bare neo4j driver, in the same run.

1. Load (batched `UNWIND`, --batch rows per transaction): --users users, --works works over a genre
   tree, --follows follows (one "celebrity" followed by every other user, the rest skewed towards
   popular users), --ratings ratings (1-5, skewed towards popular works), and every user's
   INTERESTED_IN weights (culture_graph.model.interest_weights of their generated ratings).
2. Latency, p50/p99 of --queries calls per query over random users: ListFollowers, ListFollowing,
   FriendsWhoLiked, SimilarTastes, Recommend; FollowersInterestedIn as whole streams of the
   celebrity's followers (pages of 5000) until the last page, --streams times.
   Ratio = gRPC / bare (the service's overhead: validation, cursors, protobuf, the extra lookups).

    .venv/bin/python bench/graph.py [--users 10000] [--follows 200000] [--ratings 100000] [--works 5000]
    .venv/bin/python bench/graph.py --users 2000 --follows 40000 --ratings 20000 --works 1000  # quicker

Every node carries the run's id prefix; they are deleted at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from events_common import load_note, percentile, serve_role, up

from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_events.outbox.neo4j import driver_from_uri
from culture_graph import model
from culture_graph.settings import GraphSettings
from culture_graph.store import (
    FOLLOWERS,
    FOLLOWERS_INTERESTED_IN,
    FOLLOWING,
    FRIENDS_WHO_LIKED,
    MY_TASTE,
    RECOMMEND,
    SHARED_GENRES,
    SIMILAR,
    GraphStore,
)
from culture_stack.endpoints import platform_env, platform_settings
from culture_stack.server import say

CULTURE = Path(sys.executable).with_name("culture")
TOPS = ["fiction", "history", "science", "art", "travel"]
SUBS = ["classic", "modern", "short", "epic"]
DAY = 86_400 * 1_000_000




class Data:
    """The generated graph (ids prefixed with the run's prefix)."""

    def __init__(self, args: argparse.Namespace, prefix: str) -> None:
        rng = random.Random(args.seed)
        self.prefix = prefix
        self.users = [f"{prefix}-u{i}" for i in range(args.users)]
        self.works = [f"{prefix}-w{i}" for i in range(args.works)]
        self.genres = [f"{prefix}-{t}/{prefix}-{t}-{s}" for t in TOPS for s in SUBS]
        self.tops = [f"{prefix}-{t}" for t in TOPS]
        self.work_genres = {w: [rng.choice(self.genres)] for w in self.works}
        self.celebrity = self.users[0]
        start = 1_700_000_000 * 1_000_000
        follows: dict[tuple[str, str], int] = {}
        for i, u in enumerate(self.users[1:]):  # everyone follows the celebrity
            follows[(u, self.celebrity)] = start + i
        popularity = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(self.users))))
        while len(follows) < args.follows:
            a = rng.choice(self.users)
            b = rng.choices(self.users, cum_weights=popularity)[0]
            if a != b and (a, b) not in follows:
                follows[(a, b)] = start + len(follows) * 1000
        self.follows = follows
        work_pop = list(itertools.accumulate(1 / (i + 1) ** 0.7 for i in range(len(self.works))))
        ratings: dict[tuple[str, str], tuple[int, int]] = {}
        while len(ratings) < args.ratings:
            u = rng.choice(self.users)
            w = rng.choices(self.works, cum_weights=work_pop)[0]
            ratings[(u, w)] = (rng.choice((1, 2, 3, 3, 4, 4, 4, 5, 5, 5)), start + rng.randrange(365) * DAY)
        self.ratings = ratings

    def interests(self) -> list[dict[str, Any]]:
        rows: dict[str, list[tuple[str, int, int]]] = {}
        for (u, w), (rating, at) in self.ratings.items():
            for g in model.genre_closure(self.work_genres[w]):
                rows.setdefault(u, []).append((str(g["slug"]), rating, at))
        return [{"user": u, "slug": g, "weight": weight} for u, r in rows.items()
                for g, weight in model.interest_weights(r).items()]


async def load(driver: Any, data: Data, batch: int) -> None:
    async def batches(cypher: str, rows: list[dict[str, Any]], what: str) -> None:
        started = time.monotonic()
        for i in range(0, len(rows), batch):
            await driver.execute_query(cypher, rows=rows[i: i + batch])
        say(f"  {what}: {len(rows)} in {time.monotonic() - started:.1f}s")

    genres = model.genre_closure(data.genres)
    await batches("UNWIND $rows AS g MERGE (x:Genre {slug: g.slug}) SET x.name = g.name", genres, "genres")
    await batches("UNWIND $rows AS g MATCH (x:Genre {slug: g.slug}), (p:Genre {slug: g.parent}) "
                  "MERGE (x)-[:SUBGENRE_OF]->(p)", [g for g in genres if g["parent"]], "genre parents")
    await batches("UNWIND $rows AS id CREATE (:User {user_id: id, registered_at: 0})", data.users, "users")
    await batches("UNWIND $rows AS w CREATE (x:Work {work_id: w.id, version: 1, kind: 'book', title: w.id, "
                  "genres: w.genres}) "
                  "WITH x, w UNWIND w.genres AS slug MATCH (g:Genre {slug: slug}) "
                  "CREATE (x)-[:IN_GENRE]->(g)",
                  [{"id": w, "genres": [str(g["slug"]) for g in model.genre_closure(data.work_genres[w])]}
                   for w in data.works], "works")
    await batches("UNWIND $rows AS f MATCH (a:User {user_id: f.a}), (b:User {user_id: f.b}) "
                  "CREATE (a)-[:FOLLOWS {pair: f.pair, at: f.at, in_key: f.ik, out_key: f.ok}]->(b)",
                  [{"a": a, "b": b, "at": at, "pair": model.pair_key(a, b), "ik": model.in_key(a, b, at),
                    "ok": model.out_key(a, b, at)} for (a, b), at in data.follows.items()], "follows")
    await batches("UNWIND $rows AS r MATCH (u:User {user_id: r.u}), (w:Work {work_id: r.w}) "
                  "CREATE (u)-[:RATED {pair: r.pair, rating: r.rating, at: r.at, version: 1, "
                  "review_id: r.pair}]->(w)",
                  [{"u": u, "w": w, "rating": rating, "at": at, "pair": model.pair_key(u, w)}
                   for (u, w), (rating, at) in data.ratings.items()], "ratings")
    await batches("UNWIND $rows AS i MATCH (u:User {user_id: i.user}), (g:Genre {slug: i.slug}) "
                  "CREATE (u)-[:INTERESTED_IN {weight: i.weight}]->(g)", data.interests(), "interests")


async def cleanup(driver: Any, prefix: str) -> None:
    for label, prop in (("User", "user_id"), ("Work", "work_id"), ("Genre", "slug")):
        while True:
            records, _, _ = await driver.execute_query(
                f"MATCH (n:{label}) WHERE n.{prop} STARTS WITH $p WITH n LIMIT 500 DETACH DELETE n "
                "RETURN count(*) AS n", p=prefix)
            if not records[0]["n"]:
                break


def stats(name: str, grpc_s: list[float], bare_s: list[float]) -> None:
    g50, g99 = percentile(grpc_s, 50) * 1000, percentile(grpc_s, 99) * 1000
    b50, b99 = percentile(bare_s, 50) * 1000, percentile(bare_s, 99) * 1000
    print(f"  {name:<24} gRPC p50 {g50:8.2f} ms  p99 {g99:8.2f} ms | bare p50 {b50:8.2f} ms  "
          f"p99 {b99:8.2f} ms | ratio p50 {g50 / b50:5.2f}", flush=True)


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


async def measure(stub: graph_pb2_grpc.GraphServiceStub, driver: Any, data: Data,
                  args: argparse.Namespace) -> None:
    rng = random.Random(args.seed + 1)
    settings = GraphSettings()  # the service's defaults (and CULTURE_GRAPH_* overrides), for the bare runs
    max_people, max_ratings = settings.recommend_max_people, settings.similar_max_ratings
    scale = model.MAX_RATING - model.MIN_RATING

    async def bare(cypher: str, **params: Any) -> list[Any]:
        records, _, _ = await driver.execute_query(cypher, params, routing_="r")
        return records

    users = [rng.choice(data.users[1:]) for _ in range(args.queries)]
    by_user: dict[str, list[str]] = {}
    for (a, b) in data.follows:
        by_user.setdefault(a, []).append(b)
    rated: dict[str, list[str]] = {}
    for (v, w) in data.ratings:
        rated.setdefault(v, []).append(w)
    rated_by_friends = []
    for u in users:  # a work one of u's friends rated, so FriendsWhoLiked has something to find
        works = [w for f in by_user.get(u, []) for w in rated.get(f, [])]
        rated_by_friends.append(works[0] if works else data.works[0])

    def low_high(u: str) -> tuple[str, str]:
        return model.key_range(u)

    cases: list[tuple[str, Callable[[int], Awaitable[Any]], Callable[[int], Awaitable[Any]]]] = [
        ("ListFollowers", lambda i: stub.ListFollowers(graph_pb2.ListFollowersRequest(user_id=users[i])),
         lambda i: bare(FOLLOWERS, low=low_high(users[i])[0], high=low_high(users[i])[1], limit=51)),
        ("ListFollowing", lambda i: stub.ListFollowing(graph_pb2.ListFollowingRequest(user_id=users[i])),
         lambda i: bare(FOLLOWING, low=low_high(users[i])[0], high=low_high(users[i])[1], limit=51)),
        ("FriendsWhoLiked", lambda i: stub.FriendsWhoLiked(graph_pb2.FriendsWhoLikedRequest(
            user_id=users[i], work_id=rated_by_friends[i], min_rating=1)),
         lambda i: bare(FRIENDS_WHO_LIKED, user_id=users[i], work_id=rated_by_friends[i], min_rating=1,
                        after=None, limit=21)),
        ("SimilarTastes", lambda i: stub.SimilarTastes(graph_pb2.SimilarTastesRequest(user_id=users[i])),
         lambda i: _similar_bare(bare, users[i], scale, max_ratings)),
        ("Recommend", lambda i: stub.Recommend(graph_pb2.RecommendRequest(user_id=users[i])),
         lambda i: _recommend_bare(bare, users[i], scale, max_people)),
    ]
    n = len(users)
    for name, via_grpc, via_bare in cases:
        await timed([lambda i=i, f=via_grpc: f(i) for i in range(min(n, 10))])  # warm-up (plans, caches)
        await timed([lambda i=i, f=via_bare: f(i) for i in range(min(n, 10))])
        g = await timed([lambda i=i, f=via_grpc: f(i) for i in range(n)])
        b = await timed([lambda i=i, f=via_bare: f(i) for i in range(n)])
        stats(name, g, b)

    # FollowersInterestedIn: the celebrity's whole follower list, in pages of 5000, to the last page
    genres = data.tops
    low, high = model.key_range(data.celebrity)

    async def stream_grpc() -> int:
        count, token = 0, ""
        while True:
            reply = await stub.FollowersInterestedIn(graph_pb2.FollowersInterestedInRequest(
                user_id=data.celebrity, genre_slugs=genres, page_size=5000, page_token=token))
            count += len(reply.follower_user_ids)
            token = reply.next_page_token
            if not token:
                return count

    async def stream_bare() -> int:
        count, after = 0, high
        while True:
            (page,) = await bare(FOLLOWERS_INTERESTED_IN, low=low, high=after, genres=genres, limit=5001)
            count += min(len(page["ids"]), 5000)
            if len(page["ids"]) <= 5000:
                return count
            after = page["keys"][4999]

    streamed = await stream_grpc()
    await stream_bare()
    g = await timed([stream_grpc for _ in range(args.streams)])
    b = await timed([stream_bare for _ in range(args.streams)])
    stats(f"FollowersInterestedIn ({streamed} of {len(data.users) - 1} followers)", g, b)


async def _similar_bare(bare: Callable[..., Awaitable[list[Any]]], user: str, scale: int,
                        max_ratings: int) -> None:
    rows = await bare(SIMILAR, user_id=user, scale=scale, max_ratings=max_ratings, offset=0, limit=21)
    if rows:
        await bare(SHARED_GENRES, user_id=user, others=[r["user_id"] for r in rows[:20]])


async def _recommend_bare(bare: Callable[..., Awaitable[list[Any]]], user: str, scale: int,
                          max_people: int) -> None:
    (taste,) = await bare(MY_TASTE, user_id=user)
    genres = taste["genres"]
    await bare(RECOMMEND, user_id=user, min_rating=model.LIKED, genres=genres, any_genre=not genres,
               mine={w: r for w, r in taste["ratings"]}, scale=scale, scale_max=model.MAX_RATING,
               max_people=max_people, offset=0, limit=21)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000, help="users (default 10000)")
    parser.add_argument("--follows", type=int, default=200_000, help="follows (default 200000)")
    parser.add_argument("--ratings", type=int, default=100_000, help="ratings (default 100000)")
    parser.add_argument("--works", type=int, default=5_000, help="works (default 5000)")
    parser.add_argument("--queries", type=int, default=200, help="calls per query and variant (default 200)")
    parser.add_argument("--streams", type=int, default=10,
                        help="FollowersInterestedIn full streams per variant (default 10)")
    parser.add_argument("--batch", type=int, default=5000, help="rows per UNWIND transaction (default 5000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the generated graph")
    args = parser.parse_args()
    if args.follows < args.users - 1:
        parser.error("--follows must be at least --users - 1 (everyone follows the celebrity)")
    up("neo4j")
    for name, value in platform_env().items():
        os.environ.setdefault(name, value)
    prefix = "gb" + uuid.uuid4().hex[:8]
    say(f"graph benchmark {prefix}: {args.users} users, {args.follows} follows, {args.ratings} ratings, "
        f"{args.works} works; {load_note()}")
    store = GraphStore(platform_settings().neo4j_uri or "")
    await store.connect()  # the constraints and indexes, as the service creates them
    await store.close()
    driver = driver_from_uri(platform_settings().neo4j_uri or "")
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        say("generating...")
        data = Data(args, prefix)
        say("loading (batched UNWIND)...")
        await load(driver, data, args.batch)
        async with serve_role("graph", "api-read", {}, log_dir / f"{prefix}-api-read.log") as address:
            async with grpc.aio.insecure_channel(address) as channel:
                print(f"graph queries, {args.queries} calls each ({load_note()}):", flush=True)
                await measure(graph_pb2_grpc.GraphServiceStub(channel), driver, data, args)
    finally:
        if not args.keep:
            say("deleting the generated graph...")
            await cleanup(driver, prefix)
        await driver.close()


if __name__ == "__main__":
    asyncio.run(main())
