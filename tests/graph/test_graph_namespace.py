"""The graph's label namespace (CULTURE_GRAPH_LABEL_PREFIX) and its follow events: a store under a
prefix keeps its nodes, edges and schema apart from the unprefixed graph; FollowCreated/FollowRemoved
applied in any order rebuild exactly the follows the api-write committed (the events' times order a
pair's follows and unfollows); the pointer names the prefix the roles serve."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from culture_graph import model, pointer
from culture_graph.settings import GraphSettings
from culture_graph.store import SCHEMA, GraphStore, drop_namespace, namespaced
from culture_runtime.settings import PlatformSettings


@pytest.mark.unit
def test_namespaced_prefixes_every_label_relationship_type_and_schema_name() -> None:
    cypher = "MATCH (a:User)-[f:FOLLOWS {pair: $pair}]->(b:User)<-[:RATED*1..2]-(w:Work) RETURN a.user_id"
    assert namespaced(cypher, "") == cypher
    assert namespaced(cypher, "R1_") == ("MATCH (a:R1_User)-[f:R1_FOLLOWS {pair: $pair}]->(b:R1_User)"
                                         "<-[:R1_RATED*1..2]-(w:R1_Work) RETURN a.user_id")
    schema = [namespaced(c, "R1_") for c in SCHEMA]
    assert all(" graph_r1__" in c for c in schema)
    assert "FOR ()-[f:R1_FOLLOWS]-() ON (f.in_key)" in schema[-2]
    with pytest.raises(ValueError):
        GraphSettings(label_prefix="1bad")


@pytest_asyncio.fixture
async def rebuilt(graph_servers: object, unique: str) -> AsyncIterator[GraphStore]:
    s = GraphStore(PlatformSettings().neo4j_uri or "", outbox_label=f"GraphOutbox_{unique}",
                   label_prefix=f"N{unique}_")
    await s.connect()
    try:
        yield s
    finally:
        assert s.driver is not None
        try:
            await drop_namespace(s.driver, s.prefix)
        finally:
            await s.close()


FOLLOWS = "MATCH (a:User)-[f:FOLLOWS]->(b:User) WHERE a.user_id STARTS WITH $p " \
          "RETURN a.user_id AS a, b.user_id AS b, f.at AS at, f.in_key AS i, f.out_key AS o ORDER BY a, b"


@pytest.mark.integration
async def test_follow_events_in_any_order_rebuild_the_follows_in_a_namespace(
        store: GraphStore, rebuilt: GraphStore, unique: str) -> None:
    events: list[tuple[str, str, str, int]] = []
    users = [f"{unique}{x}" for x in "abc"]
    for u in users:
        await store.upsert_user(u, model.now_us())

    async def removed_at(a: str, b: str) -> int:
        (row,) = await store.read("MATCH (t:FollowTombstone {pair: $pair}) RETURN t.at AS at",
                                  pair=model.pair_key(a, b))
        return int(row["at"])

    a, b, c = users
    # a->b followed, unfollowed, followed again; a->c followed and unfollowed; b->c followed
    for follower, followee, actions in ((a, b, "frf"), (a, c, "fr"), (b, c, "f")):
        for action in actions:
            if action == "f":
                at, created = await store.follow(follower, followee)
                assert created
                events.append(("created", follower, followee, at))
            else:
                assert await store.unfollow(follower, followee)
                events.append(("removed", follower, followee, await removed_at(follower, followee)))
    want = await store.read(FOLLOWS, p=unique)
    assert [(r["a"], r["b"]) for r in want] == [(a, b), (b, c)]

    # every order of a->b's three events (the topics are separate: any interleaving may be consumed),
    # each twice (redeliveries), the other pairs' events around them
    ab = [e for e in events if e[1:3] == (a, b)]
    others = [e for e in events if e[1:3] != (a, b)]
    for order in itertools.permutations(ab):
        for kind, follower, followee, at in [*others, *order, *reversed(order), *reversed(others)]:
            if kind == "created":
                await rebuilt.apply_follow(follower, followee, at)
            else:
                await rebuilt.apply_unfollow(follower, followee, at)
        assert await rebuilt.read(FOLLOWS, p=unique) == want
    # the unprefixed graph is untouched by the namespace and the other way round
    assert await store.read(FOLLOWS, p=unique) == want
    assert len(await rebuilt.read("MATCH (u:User) WHERE u.user_id STARTS WITH $p RETURN u", p=unique)) == 3


@pytest.mark.integration
async def test_the_pointer_names_the_prefix_and_group_the_roles_serve(rebuilt: GraphStore,
                                                                      unique: str) -> None:
    uri = PlatformSettings().neo4j_uri or ""
    base = GraphSettings(label_prefix=f"B{unique}_", consumer_group="g0")
    assert await pointer.resolve(base, uri) == base
    await pointer.write_pointer(uri, "neo4j", base.label_prefix, rebuilt.prefix, "g1")
    try:
        resolved = await pointer.resolve(base, uri)
        assert (resolved.label_prefix, resolved.consumer_group) == (rebuilt.prefix, "g1")
        fixed = base.model_copy(update={"follow_pointer": False})
        assert await pointer.resolve(fixed, uri) == fixed
    finally:
        assert rebuilt.driver is not None
        await rebuilt.driver.execute_query("MATCH (p:CultureGraphPointer {base: $b}) DELETE p",
                                           b=base.label_prefix)
