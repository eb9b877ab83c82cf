"""Neo4j of the local stack: a real graph over Bolt with the async driver, and what `status` reports.

Every test writes its nodes with its own namespace property (`ns`), so it never depends on, or
disturbs, what other tests or services keep in the same database, and deletes them afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from neo4j import AsyncDriver, AsyncGraphDatabase

from culture_stack import registry, stack
from culture_stack.server import Context
from culture_stack.servers import neo4j as neo4j_server


@pytest.fixture(scope="module")
def neo4j_settings(stack_ctx: Context) -> dict[str, Any]:
    """Only Neo4j (not the whole stack) up and healthy; its connection settings."""
    servers = registry.select(["neo4j"])
    stack.up(stack_ctx, servers)
    return servers[0].settings()


@pytest_asyncio.fixture
async def driver(neo4j_settings: dict[str, Any]) -> AsyncIterator[AsyncDriver]:
    async with AsyncGraphDatabase.driver(
        neo4j_settings["uri"], auth=(neo4j_settings["user"], neo4j_settings["password"])
    ) as drv:
        await drv.verify_connectivity()
        yield drv


@pytest_asyncio.fixture
async def ns(driver: AsyncDriver, unique: str) -> AsyncIterator[str]:
    """This test's namespace; its nodes (and so their relationships) are removed afterwards."""
    yield unique
    await driver.execute_query("MATCH (n {ns: $ns}) DETACH DELETE n", ns=unique, database_="neo4j")


# -- the graph: who follows whom, who rated which work, which genre each work has ----------------------

FOLLOWS = [
    ("alice", "bob"), ("alice", "carol"),
    ("bob", "dave"), ("bob", "carol"),      # carol is alice's friend already: not a friend-of-friend
    ("carol", "dave"), ("carol", "erin"),   # dave is reached twice: counted once
    ("carol", "alice"),                     # back to alice herself: never recommended to herself
    ("erin", "frank"),                      # frank is three FOLLOWS away: too far
]
GENRES = {
    "Dune": "sci-fi", "Neuromancer": "sci-fi", "Solaris": "sci-fi", "Stalker": "sci-fi",
    "Pride and Prejudice": "classic", "Middlemarch": "classic",
}
RATINGS = [
    ("dave", "Dune", 5), ("erin", "Dune", 4),
    ("dave", "Neuromancer", 4), ("frank", "Neuromancer", 5),
    ("dave", "Solaris", 2),                 # not highly rated
    ("erin", "Stalker", 5), ("alice", "Stalker", 5),  # alice rated it herself
    ("erin", "Pride and Prejudice", 5),     # a genre alice is not interested in
    ("bob", "Middlemarch", 5),              # bob is a direct friend, not a friend-of-friend
]
INTERESTS = [("alice", "sci-fi"), ("bob", "classic")]

BUILD = """
UNWIND $users AS name MERGE (:User {ns: $ns, name: name})
WITH count(*) AS _
UNWIND $genres AS g
MERGE (w:Work {ns: $ns, title: g.title})
MERGE (genre:Genre {ns: $ns, name: g.genre})
MERGE (w)-[:IN_GENRE]->(genre)
WITH count(*) AS _
UNWIND $follows AS f
MATCH (a:User {ns: $ns, name: f[0]}), (b:User {ns: $ns, name: f[1]})
MERGE (a)-[:FOLLOWS]->(b)
WITH count(*) AS _
UNWIND $ratings AS r
MATCH (u:User {ns: $ns, name: r.user}), (w:Work {ns: $ns, title: r.title})
MERGE (u)-[rated:RATED]->(w) SET rated.stars = r.stars
WITH count(*) AS _
UNWIND $interests AS i
MATCH (u:User {ns: $ns, name: i[0]}), (g:Genre {ns: $ns, name: i[1]})
MERGE (u)-[:INTERESTED_IN]->(g)
"""

# 3 hops out (FOLLOWS, FOLLOWS, RATED), then the genre must be one of my interests
RECOMMEND = """
MATCH (me:User {ns: $ns, name: $me})-[:FOLLOWS]->(:User)-[:FOLLOWS]->(fof:User)
WHERE fof <> me AND NOT (me)-[:FOLLOWS]->(fof)
WITH DISTINCT me, fof
MATCH (fof)-[r:RATED]->(w:Work)-[:IN_GENRE]->(:Genre)<-[:INTERESTED_IN]-(me)
WHERE r.stars >= $min_stars AND NOT (me)-[:RATED]->(w)
WITH w, r, fof
RETURN w.title AS title, avg(r.stars) AS score, count(DISTINCT fof) AS raters
ORDER BY score DESC, title
"""


async def build_graph(driver: AsyncDriver, ns: str) -> None:
    users = sorted({u for pair in FOLLOWS for u in pair} | {u for u, _, _ in RATINGS})
    await driver.execute_query(
        BUILD, ns=ns, users=users,
        genres=[{"title": t, "genre": g} for t, g in GENRES.items()],
        follows=[list(f) for f in FOLLOWS],
        ratings=[{"user": u, "title": t, "stars": s} for u, t, s in RATINGS],
        interests=[list(i) for i in INTERESTS],
        database_="neo4j",
    )


@pytest.mark.integration
async def test_friends_of_friends_highly_rated_works(driver: AsyncDriver, ns: str) -> None:
    await build_graph(driver, ns)
    await build_graph(driver, ns)  # MERGE: building twice changes nothing

    records, _, _ = await driver.execute_query(RECOMMEND, ns=ns, me="alice", min_stars=4, database_="neo4j")

    assert [(r["title"], r["score"], r["raters"]) for r in records] == [
        ("Dune", 4.5, 2),
        ("Neuromancer", 4.0, 1),
    ]


@pytest.mark.integration
async def test_graph_is_merged_not_duplicated_and_cleaned(driver: AsyncDriver, ns: str) -> None:
    await build_graph(driver, ns)
    await build_graph(driver, ns)

    records, _, _ = await driver.execute_query(
        "MATCH (n {ns: $ns}) RETURN labels(n)[0] AS label, count(*) AS total ORDER BY label",
        ns=ns, database_="neo4j", routing_="r",
    )
    assert {r["label"]: r["total"] for r in records} == {"Genre": 2, "User": 6, "Work": len(GENRES)}
    records, _, _ = await driver.execute_query(
        "MATCH ({ns: $ns})-[r:FOLLOWS]->({ns: $ns}) RETURN count(r) AS n", ns=ns, database_="neo4j"
    )
    assert records[0]["n"] == len(FOLLOWS)


@pytest.mark.integration
async def test_a_write_is_visible_to_a_new_session(driver: AsyncDriver, ns: str) -> None:
    async with driver.session(database="neo4j") as session:
        await session.execute_write(
            lambda tx: tx.run("CREATE (:User {ns: $ns, name: 'solo'})", ns=ns)
        )
    async with driver.session(database="neo4j") as session:
        result = await session.run("MATCH (u:User {ns: $ns}) RETURN u.name AS name", ns=ns)
        names = [r["name"] async for r in result]
    assert names == ["solo"]


@pytest.mark.integration
def test_status_reports_neo4j_5(neo4j_settings: dict[str, Any]) -> None:
    culture = Path(sys.executable).with_name("culture")
    out = subprocess.run([str(culture), "stack", "status", "neo4j"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.search(r"neo4j\s+healthy\s+17687\s+\d+\s+Neo4j Kernel 5\.\d+\.\d+ community", out.stdout), (
        out.stdout
    )


@pytest.mark.unit
def test_launcher_command_line() -> None:
    argv = neo4j_server.java_argv(Path("/jdk/bin/java"), [Path("/c/launcher"), "/c/lib/*"], Path("/s/neo4j"))
    assert argv[0] == "/jdk/bin/java"
    assert "-Xmx1g" in argv
    assert argv[argv.index("-cp") + 1] == "/c/launcher:/c/lib/*"
    assert argv[-4:] == ["Launcher", "--home=/s/neo4j", "--bolt=127.0.0.1:17687", "--pagecache=256m"]


@pytest.mark.unit
def test_launcher_is_recompiled_when_its_source_or_neo4j_changes() -> None:
    key = neo4j_server.launcher_key(b"class A {}")
    assert key == neo4j_server.launcher_key(b"class A {}")
    assert key != neo4j_server.launcher_key(b"class B {}")
    assert key != neo4j_server.launcher_key(b"class A {}", version="5.26.0")


@pytest.mark.unit
def test_version_text() -> None:
    assert neo4j_server.format_version("Neo4j Kernel", ["5.26.30"], "community") == (
        "Neo4j Kernel 5.26.30 community"
    )
