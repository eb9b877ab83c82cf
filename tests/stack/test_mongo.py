"""The stack's MongoDB-compatible server (SecantusDB) with motor: what the catalog service and the
Mongo outbox rely on (multi-document transactions, unique indexes, range queries with sort,
find_one_and_update, change streams), and what `status` reports.

Every test works in its own database (the `unique` name), dropped at the end, so it never depends
on, or disturbs, what other tests or services keep on the server.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
import pytest_asyncio
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

from culture_stack import registry, stack
from culture_stack.server import Context
from culture_stack.servers import mongo as mongo_server


@pytest.fixture(scope="module")
def mongo_settings(stack_ctx: Context) -> dict[str, Any]:
    """Only the Mongo server (not the whole stack) up and healthy; its connection settings."""
    servers = registry.select(["mongo"])
    stack.up(stack_ctx, servers)
    return servers[-1].settings()


@pytest_asyncio.fixture
async def client(mongo_settings: dict[str, Any]) -> AsyncIterator[AsyncIOMotorClient]:
    motor_client: AsyncIOMotorClient = AsyncIOMotorClient(mongo_settings["uri"],
                                                          serverSelectionTimeoutMS=10_000)
    try:
        yield motor_client
    finally:
        motor_client.close()


@pytest_asyncio.fixture
async def db(client: AsyncIOMotorClient, unique: str) -> AsyncIterator[AsyncIOMotorDatabase]:
    """This test's own database, dropped afterwards."""
    yield client[unique]
    await client.drop_database(unique)


@pytest.mark.integration
async def test_transaction_commit_writes_both_collections(
    client: AsyncIOMotorClient, db: AsyncIOMotorDatabase
) -> None:
    """A review and its outbox row land together, and nobody sees either before the commit."""
    # collections exist before the transaction, as the catalog service creates them at start-up
    await db.create_collection("reviews")
    await db.create_collection("outbox")
    async with await client.start_session() as session:
        async with session.start_transaction():
            await db.reviews.insert_one({"_id": "r1", "work": "Dune", "rating": 5}, session=session)
            await db.outbox.insert_one({"_id": "e1", "topic": "catalog.review-created", "key": "r1"},
                                       session=session)
            assert await db.reviews.find_one({"_id": "r1"}) is None, "uncommitted write visible outside"
    assert await db.reviews.find_one({"_id": "r1"}) == {"_id": "r1", "work": "Dune", "rating": 5}
    assert (await db.outbox.find_one({"_id": "e1"}))["key"] == "r1"


@pytest.mark.integration
async def test_transaction_abort_leaves_nothing(client: AsyncIOMotorClient, db: AsyncIOMotorDatabase) -> None:
    """Inserts and updates of an aborted transaction (explicit abort or an exception) all vanish."""
    await db.reviews.insert_one({"_id": "kept", "rating": 3})
    await db.create_collection("outbox")
    async with await client.start_session() as session:
        session.start_transaction()
        await db.reviews.insert_one({"_id": "r1", "rating": 5}, session=session)
        await db.reviews.update_one({"_id": "kept"}, {"$set": {"rating": 1}}, session=session)
        await db.outbox.insert_one({"_id": "e1"}, session=session)
        await session.abort_transaction()

        with pytest.raises(RuntimeError):
            async with session.start_transaction():
                await db.reviews.insert_one({"_id": "r2", "rating": 4}, session=session)
                await db.outbox.insert_one({"_id": "e2"}, session=session)
                raise RuntimeError("handler failed")

    assert await db.reviews.find().to_list(None) == [{"_id": "kept", "rating": 3}]
    assert await db.outbox.count_documents({}) == 0


@pytest.mark.integration
async def test_unique_index_rejects_duplicate(db: AsyncIOMotorDatabase) -> None:
    await db.profiles.create_index("handle", unique=True)
    await db.profiles.insert_one({"handle": "ada"})
    with pytest.raises(DuplicateKeyError) as excinfo:
        await db.profiles.insert_one({"handle": "ada"})
    assert excinfo.value.code == 11000
    assert await db.profiles.count_documents({}) == 1


@pytest.mark.integration
async def test_range_query_with_sort(db: AsyncIOMotorDatabase) -> None:
    await db.works.insert_many([{"title": f"w{year}", "year": year} for year in range(1950, 2000, 5)])
    await db.works.create_index("year")
    found = await db.works.find({"year": {"$gte": 1960, "$lt": 1980}}, {"_id": 0, "year": 1}) \
        .sort("year", pymongo.DESCENDING).to_list(None)
    assert [d["year"] for d in found] == [1975, 1970, 1965, 1960]
    first_two = await db.works.find({"year": {"$gte": 1960}}).sort("year", 1).limit(2).to_list(None)
    assert [d["year"] for d in first_two] == [1960, 1965]


@pytest.mark.integration
async def test_find_one_and_update_claims_oldest_first(db: AsyncIOMotorDatabase) -> None:
    """The outbox relay's claim step: the oldest unpublished row, atomically marked."""
    await db.outbox.insert_many([{"seq": n, "published": False} for n in (3, 1, 2)])
    claimed = await db.outbox.find_one_and_update(
        {"published": False}, {"$set": {"published": True}, "$inc": {"attempts": 1}},
        sort=[("seq", 1)], return_document=pymongo.ReturnDocument.AFTER,
    )
    assert (claimed["seq"], claimed["published"], claimed["attempts"]) == (1, True, 1)
    rest = await db.outbox.find({"published": False}).sort("seq", 1).limit(10).to_list(None)
    assert [d["seq"] for d in rest] == [2, 3]


@pytest.mark.integration
async def test_change_stream_sees_an_insert(db: AsyncIOMotorDatabase) -> None:
    """Not needed by the outbox (it polls), but SecantusDB has change streams, unlike FerretDB 1.x."""
    await db.create_collection("reviews")
    async with db.reviews.watch(max_await_time_ms=200) as stream:
        await db.reviews.insert_one({"_id": "r1"})
        deadline = time.monotonic() + 10
        change = None
        while change is None and time.monotonic() < deadline:
            change = await asyncio.wait_for(stream.try_next(), timeout=10)
    assert change is not None, "no change event within 10s"
    assert (change["operationType"], change["documentKey"]) == ("insert", {"_id": "r1"})


@pytest.mark.integration
def test_hello_advertises_a_replica_set_primary(mongo_settings: dict[str, Any]) -> None:
    """What lets drivers run transactions: a primary of a (single-node) replica set."""
    with pymongo.MongoClient(mongo_settings["uri"], serverSelectionTimeoutMS=10_000) as sync_client:
        hello = sync_client.admin.command("hello")
    assert hello["isWritablePrimary"] is True
    assert hello["setName"] == mongo_settings["replica_set"]


@pytest.mark.integration
def test_status_reports_the_servers_own_version(mongo_settings: dict[str, Any]) -> None:
    culture = Path(sys.executable).with_name("culture")
    out = subprocess.run([str(culture), "stack", "status", "mongo"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    pattern = rf"mongo\s+healthy\s+17017\s+\d+\s+SecantusDB {re.escape(mongo_server.SECANTUS_VERSION)} " \
              r"\(MongoDB wire \d+\.\d+\.\d+\)"
    assert re.search(pattern, out.stdout), out.stdout


@pytest.mark.unit
def test_describe_build_names_server_and_wire_version() -> None:
    describe = mongo_server.describe_build
    assert describe({"version": "8.2.11", "secantusVersion": "0.7.0b3"}) == \
        "SecantusDB 0.7.0b3 (MongoDB wire 8.2.11)"
    assert describe({"version": "7.0.42", "ferretdbVersion": "v1.24.2"}) == \
        "FerretDB v1.24.2 (MongoDB wire 7.0.42)"
    assert describe({"version": "7.0.14"}) == "MongoDB 7.0.14"
