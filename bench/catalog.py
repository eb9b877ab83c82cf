"""Catalog read and write costs on the local stack (SecantusDB, Redis), against bare-client baselines.

1. GetWork latency, p50/p99 of --reads sequential calls over a set of --works works:
   - cached: `culture serve catalog --role api-read` (Redis read-through), after one warm-up pass;
   - uncached: a second api-read process with CULTURE_CATALOG_CACHE_ENABLED=false (MongoDB each time);
   - bare: motor `find_one` of the same documents from this process (no gRPC, no service).
2. CreateReview throughput: --reviews reviews by distinct users over the works, --concurrency in
   flight, through `culture serve catalog --role api-write` (one transaction per review: review,
   aggregate $inc, outbox event); baseline: the same three writes in bare motor transactions from
   this process with the same concurrency. Ratio = service / bare.

    .venv/bin/python bench/catalog.py [--works 200] [--reads 2000] [--reviews 400] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from bson import ObjectId
from events_common import load_note, percentile, serve_role, unique, up
from motor.motor_asyncio import AsyncIOMotorClient

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture_events.message import Message, Meta
from culture_events.outbox.mongo import MongoOutbox
from culture_stack.endpoints import platform_settings
from culture_stack.server import say

CULTURE = Path(sys.executable).with_name("culture")




def stats(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(samples, 50) * 1000, percentile(samples, 99) * 1000
    print(f"  {name:<36} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(samples)} calls)")
    return p50, p99


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


async def reads(
    write: catalog_pb2_grpc.CatalogServiceStub,
    cached: catalog_pb2_grpc.CatalogServiceStub,
    uncached: catalog_pb2_grpc.CatalogServiceStub,
    db: Any,
    args: argparse.Namespace,
) -> list[str]:
    say(f"adding {args.works} works...")
    ids = []
    for i in range(args.works):
        work = catalog_pb2.Work(
            title=f"Bench work {i}",
            release_year=2000,
            genre_paths=["fiction/bench"],
            book=catalog_pb2.BookDetails(authors=[f"Author {i}"], isbn="9780306406157"),
        )
        reply = await write.CreateWork(
            catalog_pb2.CreateWorkRequest(work=work, creator_user_id="bench"), timeout=30
        )
        ids.append(reply.work.work_id)
    rng = random.Random(7)
    order = [rng.choice(ids) for _ in range(args.reads)]
    say("GetWork: warming the cache (one pass over the works)...")
    for work_id in ids:
        await cached.GetWork(catalog_pb2.GetWorkRequest(work_id=work_id), timeout=30)
    say(f"GetWork: {args.reads} sequential calls each way...")
    hot = await timed(
        [lambda w=w: cached.GetWork(catalog_pb2.GetWorkRequest(work_id=w), timeout=30) for w in order]
    )
    cold = await timed(
        [lambda w=w: uncached.GetWork(catalog_pb2.GetWorkRequest(work_id=w), timeout=30) for w in order]
    )
    bare = await timed([lambda w=w: db.works.find_one({"_id": w}, {"search_tokens": 0}) for w in order])
    print(f"GetWork over {args.works} works ({load_note()}):")
    c50, c99 = stats("api-read, Redis cache (hits)", hot)
    u50, u99 = stats("api-read, no cache (MongoDB)", cold)
    b50, _b99 = stats("bare motor find_one (no service)", bare)
    print(
        f"  ratios p50: uncached/cached {u50 / c50:.2f}x, cached/bare {c50 / b50:.2f}x, "
        f"uncached/bare {u50 / b50:.2f}x; p99 uncached/cached {u99 / c99:.2f}x"
    )
    return ids


async def run_concurrently(n: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def go(i: int) -> None:
        async with limit:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(go(i) for i in range(n)))
    return time.perf_counter() - start


async def writes(
    write: catalog_pb2_grpc.CatalogServiceStub,
    client: AsyncIOMotorClient,
    db: Any,
    ids: list[str],
    args: argparse.Namespace,
) -> None:
    n, c = args.reviews, args.concurrency
    say(f"CreateReview: {n} reviews, {c} in flight, through api-write...")
    service = await run_concurrently(
        n,
        c,
        lambda i: write.CreateReview(
            catalog_pb2.CreateReviewRequest(
                work_id=ids[i % len(ids)], author_user_id=f"svc-{i}", rating=i % 5 + 1, body="bench review"
            ),
            timeout=120,
        ),
    )

    outbox = MongoOutbox(db, "bare_outbox")
    await outbox.ensure_schema()
    for name in ("bare_reviews", "bare_outbox", "bare_outbox_seq"):
        if name not in await db.list_collection_names():
            await db.create_collection(name)
    await db.bare_reviews.create_index([("work_id", 1), ("author_user_id", 1)], unique=True)

    async def bare_one(i: int) -> None:
        work_id, rating = ids[i % len(ids)], i % 5 + 1
        for attempt in range(50):
            try:
                async with await client.start_session() as session, session.start_transaction():
                    await db.bare_reviews.insert_one(
                        {
                            "_id": str(ObjectId()),
                            "work_id": work_id,
                            "author_user_id": f"bare-{i}",
                            "rating": rating,
                            "body": "bench review",
                        },
                        session=session,
                    )
                    await db.works.update_one(
                        {"_id": work_id},
                        {"$inc": {"rating.count": 1, "rating.sum": rating, f"rating.hist.{rating}": 1}},
                        session=session,
                    )
                    await outbox.publisher(session).publish(
                        "bench.review-created", Message(b"x" * 200, {Meta.PARTITION_KEY: f"bare-{i}"})
                    )
                return
            except Exception as exc:
                if attempt == 49 or not getattr(exc, "has_error_label", lambda _: False)(
                    "TransientTransactionError"
                ):
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.03))

    say(f"bare motor transactions: {n} x (insert + $inc + outbox), {c} in flight...")
    bare = await run_concurrently(n, c, bare_one)
    print(f"CreateReview ({n} reviews over {len(ids)} works, {c} in flight; {load_note()}):")
    print(f"  api-write CreateReview                 {n / service:8.1f} /s")
    print(f"  bare motor transactions (same writes) {n / bare:8.1f} /s")
    print(f"  ratio service / bare: {bare / service:.2f} of the bare rate ({service / bare:.2f}x the time)")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--works", type=int, default=200, help="works to read (default 200)")
    parser.add_argument("--reads", type=int, default=2000, help="GetWork calls per variant (default 2000)")
    parser.add_argument("--reviews", type=int, default=400, help="reviews to write per variant (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="writes in flight (default 16)")
    args = parser.parse_args()
    up("mongo", "redis", "kafka")
    name = unique("catalog").replace("-", "_")
    env = {
        "CULTURE_CATALOG_DATABASE": name,
        "CULTURE_CATALOG_CACHE_PREFIX": f"{name}:",
        "CULTURE_TOPIC_NAMESPACE": name,
    }
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    client = AsyncIOMotorClient(platform_settings().mongo_uri, tz_aware=True)
    say(load_note())
    try:
        async with (
            serve_role("catalog", "api-write", env, logs / f"{name}-write.log") as w_addr,
            serve_role("catalog", "api-read", env, logs / f"{name}-read.log") as r_addr,
            serve_role(
                "catalog", "api-read",
                {**env, "CULTURE_CATALOG_CACHE_ENABLED": "false"},
                logs / f"{name}-read-nocache.log",
            ) as u_addr,
        ):
            async with (
                grpc.aio.insecure_channel(w_addr) as wc,
                grpc.aio.insecure_channel(r_addr) as rc,
                grpc.aio.insecure_channel(u_addr) as uc,
            ):
                write = catalog_pb2_grpc.CatalogServiceStub(wc)
                db = client[name]
                ids = await reads(
                    write,
                    catalog_pb2_grpc.CatalogServiceStub(rc),
                    catalog_pb2_grpc.CatalogServiceStub(uc),
                    db,
                    args,
                )
                await writes(write, client, db, ids, args)
    finally:
        await client.drop_database(name)  # every role has stopped: no open transaction on it
        client.close()
    print(load_note())


if __name__ == "__main__":
    asyncio.run(main())
