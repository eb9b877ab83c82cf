"""The graph's queries on a small hand-built graph (real Neo4j): exact results, order and paging
included; follows (once, one event), unfollows, unknown users; ratings and interests applied from
events idempotently and out of order; and the plans of every query starting from an index seek.

The graph (every id prefixed with the test's unique name):

    follows, in this order:  a->b, a->c, b->d, c->d, c->e, e->f, f->g, d->a, b->a, c->a, h->a
    genres:  fiction, fiction/scifi, classic
    works:   w1, w2, w4, w5 scifi; w3 classic
    ratings: a: w1=5 w3=2 | b: w1=5 w2=4 w3=1 | c: w1=4 w2=5 w4=5 | d: w2=5 w5=4 w1=2
             e: w4=4 w5=5 | f: w5=5 | g: w4=5 | h: w3=5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from culture.graph.v1 import graph_pb2
from culture_graph import model
from culture_graph.service import GraphReader, GraphWriter
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
    USER_EXISTS,
    GraphStore,
)
from culture_grpc.errors import InvalidArgument, NotFound
from culture_grpc.validation import request_violations

pytestmark = pytest.mark.integration

DAY = 86_400 * 1_000_000
BASE = 1_700_000_000 * 1_000_000
USERS = "abcdefgh"
FOLLOWS = ["ab", "ac", "bd", "cd", "ce", "ef", "fg", "da", "ba", "ca", "ha"]
RATINGS = [("a", "w1", 5), ("a", "w3", 2), ("b", "w1", 5), ("b", "w2", 4), ("b", "w3", 1),
           ("c", "w1", 4), ("c", "w2", 5), ("c", "w4", 5), ("d", "w2", 5), ("d", "w5", 4), ("d", "w1", 2),
           ("e", "w4", 4), ("e", "w5", 5), ("f", "w5", 5), ("g", "w4", 5), ("h", "w3", 5)]


class Graph:
    def __init__(self, store: GraphStore, unique: str) -> None:
        self.store, self.u = store, unique
        self.reader = GraphReader(store, GraphSettings())
        self.writer = GraphWriter(store)

    def id(self, name: str) -> str:
        return f"{self.u}-{name}"

    def genre(self, name: str) -> str:
        return {"fiction": f"{self.u}-fiction", "scifi": f"{self.u}-fiction/{self.u}-scifi",
                "classic": f"{self.u}-classic"}[name]

    def names(self, ids: Any) -> list[str]:
        return [i.removeprefix(f"{self.u}-") for i in ids]

    async def build(self) -> None:
        for n in USERS:
            await self.store.upsert_user(self.id(n), BASE)
        for w, g in (("w1", "scifi"), ("w2", "scifi"), ("w3", "classic"), ("w4", "scifi"), ("w5", "scifi")):
            assert await self.store.upsert_work(self.id(w), 1, "book", w.upper(), [self.genre(g)])
        for a, b in FOLLOWS:
            await self.writer.Follow(graph_pb2.FollowRequest(follower_user_id=self.id(a),
                                                             followee_user_id=self.id(b)), None)
        for i, (user, work, rating) in enumerate(RATINGS):
            await self.rate(user, work, rating, at=BASE + i * DAY)

    async def rate(self, user: str, work: str, rating: int, *, at: int, version: int = 1,
                   review: str | None = None) -> bool:
        return await self.store.apply_rating(
            review_id=self.id(review or f"r-{user}-{work}"), user_id=self.id(user), work_id=self.id(work),
            rating=rating, at=at, version=version, genre_paths=[])

    async def interests(self, user: str) -> dict[str, float]:
        rows = await self.store.read("MATCH (:User {user_id: $u})-[i:INTERESTED_IN]->(g:Genre) "
                                     "RETURN g.slug AS slug, i.weight AS w", u=self.id(user))
        return {r["slug"]: r["w"] for r in rows}


@pytest.fixture
async def graph(store: GraphStore, unique: str) -> Graph:
    g = Graph(store, unique)
    await g.build()
    return g


async def test_follow_lists_newest_first_with_pages(graph: Graph) -> None:
    r = graph.reader
    page = await r.ListFollowers(graph_pb2.ListFollowersRequest(user_id=graph.id("a"), page_size=3), None)
    assert graph.names(f.follower_user_id for f in page.follows) == ["h", "c", "b"]
    assert {f.followee_user_id for f in page.follows} == {graph.id("a")}
    assert page.next_page_token
    rest = await r.ListFollowers(graph_pb2.ListFollowersRequest(
        user_id=graph.id("a"), page_size=3, page_token=page.next_page_token), None)
    assert graph.names(f.follower_user_id for f in rest.follows) == ["d"]
    assert rest.next_page_token == ""
    following = await r.ListFollowing(graph_pb2.ListFollowingRequest(user_id=graph.id("c")), None)
    assert graph.names(f.followee_user_id for f in following.follows) == ["a", "e", "d"]
    times = [f.create_time.ToMicroseconds() for f in following.follows]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    with pytest.raises(InvalidArgument):  # a token of another user's list
        await r.ListFollowers(graph_pb2.ListFollowersRequest(user_id=graph.id("b"),
                                                             page_token=page.next_page_token), None)
    with pytest.raises(NotFound):
        await r.ListFollowers(graph_pb2.ListFollowersRequest(user_id=graph.id("nobody")), None)


async def test_friends_who_liked_best_rating_first(graph: Graph) -> None:
    r = graph.reader
    w1 = await r.FriendsWhoLiked(graph_pb2.FriendsWhoLikedRequest(user_id=graph.id("a"),
                                                                  work_id=graph.id("w1")), None)
    assert [(graph.names([x.user_id])[0], x.rating) for x in w1.ratings] == [("b", 5), ("c", 4)]
    w2 = await r.FriendsWhoLiked(graph_pb2.FriendsWhoLikedRequest(user_id=graph.id("a"),
                                                                  work_id=graph.id("w2"), page_size=1), None)
    assert [(graph.names([x.user_id])[0], x.rating) for x in w2.ratings] == [("c", 5)]
    w2b = await r.FriendsWhoLiked(graph_pb2.FriendsWhoLikedRequest(
        user_id=graph.id("a"), work_id=graph.id("w2"), page_size=1, page_token=w2.next_page_token), None)
    assert [(graph.names([x.user_id])[0], x.rating) for x in w2b.ratings] == [("b", 4)]
    assert w2b.next_page_token == ""
    strict = await r.FriendsWhoLiked(graph_pb2.FriendsWhoLikedRequest(
        user_id=graph.id("a"), work_id=graph.id("w1"), min_rating=5), None)
    assert graph.names(x.user_id for x in strict.ratings) == ["b"]


async def test_similar_tastes_by_mean_agreement(graph: Graph) -> None:
    res = await graph.reader.SimilarTastes(graph_pb2.SimilarTastesRequest(user_id=graph.id("a")), None)
    got = [(graph.names([u.user_id])[0], u.similarity, u.common_work_count) for u in res.users]
    # b: w1 5/5 -> 1, w3 2/1 -> 0.75; c: w1 5/4 -> 0.75; d: w1 5/2 -> 0.25; h: w3 2/5 -> 0.25
    assert got == [("b", 0.875, 2), ("c", 0.75, 1), ("d", 0.25, 1), ("h", 0.25, 1)]
    # a and b both like fiction and scifi (b's w1=5, w2=4 outweigh w3=1, which is classic)
    assert list(res.users[0].shared_genre_slugs) == sorted([graph.genre("fiction"), graph.genre("scifi")])
    page = await graph.reader.SimilarTastes(graph_pb2.SimilarTastesRequest(user_id=graph.id("a"),
                                                                           page_size=3), None)
    more = await graph.reader.SimilarTastes(graph_pb2.SimilarTastesRequest(
        user_id=graph.id("a"), page_size=3, page_token=page.next_page_token), None)
    assert graph.names(u.user_id for u in [*page.users, *more.users]) == ["b", "c", "d", "h"]


async def test_recommend_within_three_hops_weighted_by_similarity(graph: Graph) -> None:
    res = await graph.reader.Recommend(graph_pb2.RecommendRequest(user_id=graph.id("a")), None)
    sim = {"b": 0.875, "c": 0.75, "d": 0.25}

    def c(person: str, rating: int, hops: int) -> float:
        return model.contribution(sim.get(person, 0.0), rating, hops)

    expected = [  # g is four follows away; w3 is rated by a; a is not interested in classic
        ("w2", c("b", 4, 1) + c("c", 5, 1) + c("d", 5, 2), ["c", "b", "d"]),
        ("w4", c("c", 5, 1) + c("e", 4, 2), ["c", "e"]),
        ("w5", c("d", 4, 2) + c("e", 5, 2) + c("f", 5, 3), ["d", "e", "f"]),
    ]
    got = [(graph.names([x.work_id])[0], x.score, graph.names(x.recommender_user_ids)) for x in
           res.recommendations]
    assert [(w, people) for w, _, people in got] == [(w, people) for w, _, people in expected]
    assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in expected])
    assert [3.875, 2.15, 4 / 3] == pytest.approx([s for _, s, _ in got])
    assert all(list(x.genre_slugs) == sorted([graph.genre("fiction"), graph.genre("scifi")])
               for x in res.recommendations)
    classic = await graph.reader.Recommend(graph_pb2.RecommendRequest(
        user_id=graph.id("a"), genre_slugs=[graph.genre("classic")]), None)
    assert list(classic.recommendations) == []  # the only classic is w3, which a rated
    paged = await graph.reader.Recommend(graph_pb2.RecommendRequest(user_id=graph.id("a"), page_size=2), None)
    tail = await graph.reader.Recommend(graph_pb2.RecommendRequest(
        user_id=graph.id("a"), page_size=2, page_token=paged.next_page_token), None)
    both = [*paged.recommendations, *tail.recommendations]
    assert graph.names(x.work_id for x in both) == ["w2", "w4", "w5"]


async def test_followers_interested_in_a_genre_paged(graph: Graph) -> None:
    r = graph.reader
    ask = graph_pb2.FollowersInterestedInRequest(user_id=graph.id("a"), genre_slugs=[graph.genre("scifi")],
                                                 page_size=2)
    first = await r.FollowersInterestedIn(ask, None)
    assert graph.names(first.follower_user_ids) == ["c", "b"]  # h (classic only) is skipped
    ask.page_token = first.next_page_token
    second = await r.FollowersInterestedIn(ask, None)
    assert graph.names(second.follower_user_ids) == ["d"] and second.next_page_token == ""
    classic = await r.FollowersInterestedIn(graph_pb2.FollowersInterestedInRequest(
        user_id=graph.id("a"), genre_slugs=[graph.genre("classic")]), None)
    assert graph.names(classic.follower_user_ids) == ["h"]
    # no genre at all: the contract's rule (min_items 1), refused by the interceptor; see test_graph_unit


async def test_follow_twice_is_one_edge_and_one_event_unfollow_and_unknown_users(
        store: GraphStore, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    for u in (a, b):
        await store.upsert_user(u, BASE)
    writer = GraphWriter(store)
    first = await writer.Follow(graph_pb2.FollowRequest(follower_user_id=a, followee_user_id=b), None)
    again = await writer.Follow(graph_pb2.FollowRequest(follower_user_id=a, followee_user_id=b), None)
    assert (first.created, again.created) == (True, False)
    assert first.follow.create_time == again.follow.create_time
    edges = await store.read("MATCH (:User {user_id: $a})-[f:FOLLOWS]->(:User {user_id: $b}) "
                             "RETURN count(f) AS n", a=a, b=b)
    assert edges[0]["n"] == 1
    assert await _outbox(store) == [("graph.follow-created", a)]

    assert (await writer.Unfollow(graph_pb2.UnfollowRequest(follower_user_id=a, followee_user_id=b),
                                  None)).removed
    assert not (await writer.Unfollow(graph_pb2.UnfollowRequest(follower_user_id=a, followee_user_id=b),
                                      None)).removed
    assert await _outbox(store) == [("graph.follow-created", a), ("graph.follow-removed", a)]

    with pytest.raises(NotFound, match="nobody"):
        await writer.Follow(graph_pb2.FollowRequest(follower_user_id=a, followee_user_id=f"{unique}-nobody"),
                            None)
    with pytest.raises(InvalidArgument):
        await writer.Follow(graph_pb2.FollowRequest(follower_user_id=a, followee_user_id=a), None)
    # a NUL in an id: the contract's rule, refused by the interceptor before the servicer runs
    assert request_violations(graph_pb2.FollowRequest(follower_user_id=a, followee_user_id="x\x00y"))
    assert len(await _outbox(store)) == 2


async def test_concurrent_follows_of_one_pair_make_one_edge_and_one_event(store: GraphStore,
                                                                          unique: str) -> None:
    import asyncio

    a, b = f"{unique}-a", f"{unique}-b"
    for u in (a, b):
        await store.upsert_user(u, BASE)
    results = await asyncio.gather(*(store.follow(a, b) for _ in range(5)))
    assert sum(created for _, created in results) == 1
    assert len({at for at, _ in results}) == 1
    assert await _outbox(store) == [("graph.follow-created", a)]


async def _outbox(store: GraphStore) -> list[tuple[str, str]]:
    rows = await store.read(f"MATCH (e:`{store.outbox.label}`) RETURN e.topic AS t, e.key AS k "
                            "ORDER BY e.at, e.ord")
    return [(r["t"], r["k"]) for r in rows]


async def test_interests_follow_the_reviews_and_replays_change_nothing(store: GraphStore,
                                                                        unique: str) -> None:
    g = Graph(store, unique)
    await store.upsert_user(g.id("u"), BASE)
    await store.upsert_work(g.id("w1"), 1, "book", "W1", [g.genre("scifi")])
    await store.upsert_work(g.id("w3"), 1, "book", "W3", [g.genre("classic")])
    assert await g.interests("u") == {}

    assert await g.rate("u", "w1", 5, at=BASE)
    assert await g.interests("u") == {g.genre("fiction"): 0.5, g.genre("scifi"): 0.5}
    assert await g.rate("u", "w3", 4, at=BASE + 180 * DAY)
    # w1 is now one half-life older than the newest rating: (0.5 * 1) / (0.5 + 1)
    assert await g.interests("u") == {g.genre("fiction"): round(0.5 / 1.5, 6),
                                      g.genre("scifi"): round(0.5 / 1.5, 6), g.genre("classic"): 0.25}
    snapshot = await g.interests("u")
    # the same events again: nothing changes
    assert not await g.rate("u", "w1", 5, at=BASE)
    assert not await g.rate("u", "w3", 4, at=BASE + 180 * DAY)
    assert await g.interests("u") == snapshot

    # an update (version 2) lowers w1 to 2 stars; the late create (version 1) arriving after is ignored
    assert await g.rate("u", "w1", 2, at=BASE + 200 * DAY, version=2)
    assert not await g.rate("u", "w1", 5, at=BASE, version=1)
    assert g.genre("scifi") not in await g.interests("u")

    # the review of w3 is deleted (version 2); its late update (version 2 too) cannot bring it back
    assert await store.remove_rating(review_id=g.id("r-u-w3"), user_id=g.id("u"), work_id=g.id("w3"),
                                     version=2)
    assert not await g.rate("u", "w3", 5, at=BASE + 300 * DAY, version=2)
    assert g.genre("classic") not in await g.interests("u")
    rated = await store.read("MATCH (:User {user_id: $u})-[r:RATED]->(w:Work) RETURN w.work_id AS w, "
                             "r.rating AS rating", u=g.id("u"))
    assert [(r["w"], r["rating"]) for r in rated] == [(g.id("w1"), 2)]


async def test_interests_gained_are_published_with_the_rating_and_only_when_new(store: GraphStore,
                                                                                  unique: str) -> None:
    """A rating that makes the user interested in genres they were not interested in commits an
    InterestsGained of exactly those genres in the same transaction's outbox (the feed copies what
    earlier fan-outs left out); a rating that only changes weights, a replay and a loss of interest
    publish nothing; interest lost and then gained again is published again."""
    from culture.events.v1 import graph_events_pb2

    g = Graph(store, unique)
    await store.upsert_user(g.id("u"), BASE)
    await store.upsert_work(g.id("w1"), 1, "book", "W1", [g.genre("scifi")])
    await store.upsert_work(g.id("w2"), 1, "book", "W2", [g.genre("scifi")])
    await store.upsert_work(g.id("w3"), 1, "book", "W3", [g.genre("classic")])

    async def gained() -> list[list[str]]:
        rows = await store.read(f"MATCH (e:`{store.outbox.label}`) WHERE e.topic = 'graph.interests-gained' "
                                "RETURN e.key AS k, e.payload AS p ORDER BY e.at, e.seq")
        out = []
        for r in rows:
            event = graph_events_pb2.InterestsGained.FromString(bytes(r["p"]))
            assert r["k"] == event.user_id == g.id("u")
            out.append(list(event.genre_slugs))
        return out

    assert await g.rate("u", "w1", 2, at=BASE)  # 2 stars: no interest
    assert await gained() == []
    assert await g.rate("u", "w2", 5, at=BASE + DAY)  # scifi (and fiction, its parent) become interests
    assert await gained() == [[g.genre("fiction"), g.genre("scifi")]]
    assert not await g.rate("u", "w2", 5, at=BASE + DAY)  # a replay
    assert await g.rate("u", "w3", 4, at=BASE + 2 * DAY)  # classic is new; scifi's weight changes
    assert await g.rate("u", "w2", 4, at=BASE + 3 * DAY, version=2)
    assert await gained() == [[g.genre("fiction"), g.genre("scifi")], [g.genre("classic")]]
    assert await store.remove_rating(review_id=g.id("r-u-w3"), user_id=g.id("u"), work_id=g.id("w3"),
                                     version=2)
    assert len(await gained()) == 2
    assert await g.rate("u", "w3", 5, at=BASE + 4 * DAY, version=3, review="r-u-w3-again")
    assert (await gained())[-1] == [g.genre("classic")]


async def test_work_events_apply_by_version_and_build_the_genre_hierarchy(store: GraphStore,
                                                                          unique: str) -> None:
    g = Graph(store, unique)
    assert await store.upsert_work(g.id("w"), 2, "book", "New", [g.genre("classic")])
    assert not await store.upsert_work(g.id("w"), 1, "book", "Old", [g.genre("scifi")])  # late v1
    rows = await store.read("MATCH (w:Work {work_id: $w})-[:IN_GENRE]->(x:Genre) RETURN w.title AS t, "
                            "collect(x.slug) AS genres", w=g.id("w"))
    assert rows[0]["t"] == "New" and rows[0]["genres"] == [g.genre("classic")]
    await store.upsert_work(g.id("w"), 3, "book", "Newer", [g.genre("scifi")])
    rows = await store.read("MATCH (w:Work {work_id: $w})-[:IN_GENRE]->(x:Genre) RETURN x.slug AS s "
                            "ORDER BY s", w=g.id("w"))
    assert [r["s"] for r in rows] == sorted([g.genre("fiction"), g.genre("scifi")])
    listed = await store.read("MATCH (w:Work {work_id: $w}) RETURN w.genres AS genres", w=g.id("w"))
    assert sorted(listed[0]["genres"]) == [r["s"] for r in rows]  # the list Recommend filters on
    parents = await store.read("MATCH (c:Genre {slug: $c})-[:SUBGENRE_OF]->(p:Genre) RETURN p.slug AS p",
                               c=g.genre("scifi"))
    assert [r["p"] for r in parents] == [g.genre("fiction")]


def _range(g: Graph) -> dict[str, Any]:
    low, high = model.key_range(g.id("a"))
    return {"low": low, "high": high, "limit": 10}


PLANS: list[tuple[str, str, Callable[[Graph], dict[str, Any]]]] = [
    ("ListFollowers", FOLLOWERS, _range),
    ("ListFollowing", FOLLOWING, _range),
    ("FollowersInterestedIn", FOLLOWERS_INTERESTED_IN, lambda g: {**_range(g), "genres": [g.genre("scifi")]}),
    ("FriendsWhoLiked", FRIENDS_WHO_LIKED,
     lambda g: {"user_id": g.id("a"), "work_id": g.id("w1"), "min_rating": 4, "after": None, "limit": 10}),
    ("SimilarTastes", SIMILAR, lambda g: {"user_id": g.id("a"), "scale": 4, "max_ratings": 500, "offset": 0,
                                          "limit": 10}),
    ("SharedGenres", SHARED_GENRES, lambda g: {"user_id": g.id("a"), "others": [g.id("b")]}),
    ("MyTaste", MY_TASTE, lambda g: {"user_id": g.id("a")}),
    ("Recommend", RECOMMEND, lambda g: {"user_id": g.id("a"), "min_rating": 4, "genres": [],
                                        "any_genre": True, "mine": {}, "scale": 4, "scale_max": 5,
                                        "max_people": 1000, "offset": 0, "limit": 10}),
    ("UserExists", USER_EXISTS, lambda g: {"user_id": g.id("a")}),
]


def _operators(plan: Any) -> list[str]:
    out = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", ()):
        out += _operators(child)
    return out


@pytest.mark.parametrize(("name", "cypher", "params"), PLANS, ids=[p[0] for p in PLANS])
async def test_every_query_starts_from_an_index(graph: Graph, name: str, cypher: str,
                                                params: Callable[[Graph], dict[str, Any]]) -> None:
    """Every lookup goes through an index, never a label or all-nodes scan. Whether the planner seeks
    the index or scans it with a filter is its cost model's choice: on a fresh database (a new
    machine's first run) the indexes hold a handful of entries and a scan costs the same as a seek,
    so both are accepted; what would grow with the graph, a scan of every node of a label, is not."""
    assert graph.store.driver is not None
    _, summary, _ = await graph.store.driver.execute_query("EXPLAIN " + cypher, params(graph))
    ops = _operators(summary.plan)
    leaves = [op for op in ops if "Scan" in op or "Seek" in op]
    assert leaves, ops
    assert all("Index" in op for op in leaves), f"{name} scans without an index: {ops}"
    if name in ("ListFollowers", "ListFollowing", "FollowersInterestedIn"):
        # a page is read in the index's order: no sort of every follow of the user
        assert not {"Sort", "Top", "PartialSort", "PartialTop"} & set(ops), ops


async def test_concurrent_reviews_of_one_user_leave_interests_from_all_of_them(store: GraphStore,
                                                                               unique: str) -> None:
    import asyncio

    g = Graph(store, unique)
    await store.upsert_user(g.id("u"), BASE)
    works = [(f"w{i}", "scifi" if i % 2 else "classic", 5 if i % 3 else 2) for i in range(8)]
    for w, genre, _ in works:
        await store.upsert_work(g.id(w), 1, "book", w, [g.genre(genre)])
    # the worker handles different reviews (different keys) of one user at the same time
    await asyncio.gather(*(g.rate("u", w, rating, at=BASE + i * DAY)
                           for i, (w, _, rating) in enumerate(works)))
    rows = [(str(x["slug"]), rating, BASE + i * DAY) for i, (_, genre, rating) in enumerate(works)
            for x in model.genre_closure([g.genre(genre)])]
    assert await g.interests("u") == model.interest_weights(rows)
    # and all of them changed at once (updates touch only the edges: the user node must serialise them)
    await asyncio.gather(*(g.rate("u", w, 6 - rating, at=BASE + (10 + i) * DAY, version=2)
                           for i, (w, _, rating) in enumerate(works)))
    rows = [(str(x["slug"]), 6 - rating, BASE + (10 + i) * DAY) for i, (_, genre, rating) in enumerate(works)
            for x in model.genre_closure([g.genre(genre)])]
    assert await g.interests("u") == model.interest_weights(rows)


async def test_followers_interested_in_streams_many_followers_page_by_page(store: GraphStore,
                                                                           unique: str) -> None:
    g = Graph(store, unique)
    star = g.id("star")
    fans = [g.id(f"fan{i:04d}") for i in range(1500)]
    await store.upsert_user(star, BASE)
    await store.upsert_work(g.id("w"), 1, "book", "W", [g.genre("scifi")])
    assert store.driver is not None
    rows = [{"a": f, "pair": model.pair_key(f, star), "at": BASE + i, "ik": model.in_key(f, star, BASE + i),
             "ok": model.out_key(f, star, BASE + i)} for i, f in enumerate(fans)]
    await store.driver.execute_query(  # a bulk load, as bench/graph.py does; every third fan likes scifi
        "MATCH (s:User {user_id: $star}), (w:Work {work_id: $w}) UNWIND $rows AS r "
        "CREATE (a:User {user_id: r.a})-[:FOLLOWS {pair: r.pair, at: r.at, in_key: r.ik, out_key: r.ok}]"
        "->(s) WITH a, w, r WHERE r.at % 3 = 0 "
        "CREATE (a)-[:RATED {pair: r.a, rating: 5, at: r.at, version: 1}]->(w)",
        star=star, w=g.id("w"), rows=rows)
    await store.driver.execute_query(
        "MATCH (a:User)-[:RATED]->(:Work {work_id: $w}), (x:Genre {slug: $s}) "
        "CREATE (a)-[:INTERESTED_IN {weight: 0.5}]->(x)", w=g.id("w"), s=g.genre("scifi"))
    ask = graph_pb2.FollowersInterestedInRequest(user_id=star, genre_slugs=[g.genre("scifi")], page_size=200)
    got: list[str] = []
    pages = 0
    while True:
        page = await g.reader.FollowersInterestedIn(ask, None)
        assert len(page.follower_user_ids) <= 200
        got += page.follower_user_ids
        pages += 1
        if not page.next_page_token:
            break
        ask.page_token = page.next_page_token
    expected = [f for i, f in reversed(list(enumerate(fans))) if (BASE + i) % 3 == 0]
    assert got == expected and pages == 3  # 500 interested fans, newest first, each once
