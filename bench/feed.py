"""The feed on the stack's Cassandra, in a keyspace of its own (dropped at the end unless --keep).

1. Fan-out latency: a review by an author with --followers interested followers goes through the
   worker's handler (culture_feed.worker.ReviewFanOut: the author's item, then copies in bounded
   `execute_concurrent` batches); the clock stops when the review is visible in every follower's
   feed (the handler returned: every write acknowledged; one follower's GetFeed is checked).
   The graph is replaced by an in-memory list served in pages of 1000, as the graph's
   FollowersInterestedIn would (its own cost, a stream of 10k followers, is measured by
   bench/graph.py). p50/p99 over --reviews reviews.
2. GetFeed latency with --items items in one timeline, through gRPC (`culture serve feed --role
   api-read` as a subprocess): the first page, and a page deep in the timeline (its token reached by
   paging), p50/p99 over --queries calls each. The floor beside it, in the same run, call for call
   in turn with GetFeed: the bare cassandra-driver `session.execute` of one single-partition read of
   the same rows (the page's bucket, LIMIT 25) from this process: Cassandra's own latency plus the
   driver's, without gRPC, asyncio or the feed's code.
3. Timeline write throughput: copies of reviews to --write-followers readers through the store
   (FeedStore.copy_to: the item, and the (reader, bucket) index row for readers new to the bucket)
   vs the bare cassandra-driver `execute_concurrent` of the same prepared statements and rows at the
   same concurrency, in the same run. Ratio = store / bare.

    .venv/bin/python bench/feed.py [--followers 1000] [--reviews 30] [--items 10000] [--queries 300]
                                   [--parts fanout,getfeed,writes]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

import grpc
from events_common import load_note, percentile, serve_role, up

from culture.events.v1 import catalog_events_pb2
from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture_events.codec import encode
from culture_feed import model
from culture_feed.service import FeedReader
from culture_feed.settings import FeedSettings
from culture_feed.store import Authored, FeedStore
from culture_feed.worker import ReviewFanOut
from culture_runtime.settings import PlatformSettings
from culture_stack.endpoints import platform_env
from culture_stack.server import say

CULTURE = Path(sys.executable).with_name("culture")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Followers:
    """An in-memory FollowersInterestedIn: pages of 1000."""

    def __init__(self, followers: list[str]) -> None:
        self.followers = followers

    async def page(self, author: str, genres: list[str], token: str) -> tuple[list[str], str]:
        start = int(token or 0)
        nxt = start + 1000
        return self.followers[start:nxt], str(nxt) if nxt < len(self.followers) else ""


def ms(seconds: list[float]) -> str:
    return f"p50 {percentile(seconds, 50) * 1000:.1f} ms, p99 {percentile(seconds, 99) * 1000:.1f} ms"




def review(author: str, review_id: str, when: dt.datetime) -> catalog_events_pb2.ReviewCreated:
    return catalog_events_pb2.ReviewCreated(review_id=review_id, work_id="w-" + review_id, work_title="Dune",
                                            author_user_id=author, rating=4, genre_slugs=["fiction/sf"],
                                            excerpt="x" * 200, version=1,
                                            create_time=_ts(when))


def _ts(when: dt.datetime) -> object:
    from google.protobuf import timestamp_pb2

    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when)
    return t


async def fan_out_latency(store: FeedStore, args: argparse.Namespace, run: str) -> None:
    followers = [f"{run}-f{i}" for i in range(args.followers)]
    handler = ReviewFanOut(store, Followers(followers), store.settings)
    reader = FeedReader(store, store.settings)
    times = []
    for i in range(args.reviews):
        msg = encode(review(f"{run}-author", f"{run}-r{i}", T0 + dt.timedelta(minutes=i)), key="k")
        start = time.perf_counter()
        await handler(msg)
        items, _ = await reader.page(followers[-1], 1, None)
        times.append(time.perf_counter() - start)
        assert items and items[0].review_id == f"{run}-r{i}", items
    say(f"fan-out to {args.followers} interested followers, review -> visible in every feed: {ms(times)} "
        f"({args.reviews} reviews; writes in flight {store.settings.write_concurrency})")


async def getfeed_latency(store: FeedStore, env: dict[str, str], args: argparse.Namespace, run: str,
                          log_dir: Path) -> None:
    reader_id = f"{run}-reader"
    await store.create_feed(reader_id, "reader", T0)
    now = dt.datetime.now(dt.UTC)  # the newest items are recent, as in a live feed
    copies = [(Authored(model.Item(model.item_id(now - dt.timedelta(minutes=7 * i), f"{run}-e{i}", reader_id),
                                   f"{run}-a{i % 50}", f"{run}-r{i}", f"w{i}", "Dune", 4, "x" * 200,
                                   ("fiction/sf",)), f"{run}-e{i}"), [reader_id])
              for i in range(args.items)]
    for start in range(0, len(copies), 2000):
        await store.copy_many(copies[start:start + 2000], 1)
    async with serve_role("feed", "api-read", env, log_dir / "feed-api-read.log", within=90) as address, \
            grpc.aio.insecure_channel(address) as channel:
        stub = feed_pb2_grpc.FeedServiceStub(channel)
        token, seen = "", 0
        while seen < args.items // 2:  # a token half way down the timeline
            reply = await stub.GetFeed(feed_pb2.GetFeedRequest(user_id=reader_id, page_size=100,
                                                               page_token=token), timeout=10)
            seen += len(reply.items)
            token = reply.next_page_token
        for name, tok in (("first page", ""), (f"a page {seen} items deep", token)):
            # the bare read: the same rows' partition (the page's newest item's bucket), from here
            after = model.decode_token(tok)
            upper = model.bound_id(after.time) if after is not None else model.bound_id((1 << 60) - 1)
            first = (await stub.GetFeed(feed_pb2.GetFeedRequest(user_id=reader_id, page_size=20,
                                                                page_token=tok), timeout=10)).items[0]
            bare_params = (reader_id, store.bucket(uuid.UUID(first.item_id)), upper, 25)
            times, floor = [], []
            for _ in range(args.queries):
                t = time.perf_counter()
                reply = await stub.GetFeed(feed_pb2.GetFeedRequest(user_id=reader_id, page_size=20,
                                                                   page_token=tok), timeout=10)
                times.append(time.perf_counter() - t)
                assert len(reply.items) == 20
                t = time.perf_counter()
                rows = store.session.execute(store._prepared["page"], bare_params)
                floor.append(time.perf_counter() - t)
                assert list(rows)
            say(f"GetFeed over gRPC, {args.items} items in the timeline, {name} of 20: {ms(times)}; "
                f"bare driver read of that partition, in turn: {ms(floor)}")


async def write_throughput(store: FeedStore, args: argparse.Namespace, run: str) -> None:
    from cassandra.concurrent import execute_concurrent

    n = args.write_followers
    results: dict[str, list[float]] = {"store": [], "bare": []}
    rows_per_copy = 0.0
    for rnd in range(args.write_rounds):
        for variant in ("store", "bare"):
            name = f"{run}-{variant}{rnd}"
            item = model.Item(model.item_id(T0, name, "a"), f"{run}-a", name, "w", "Dune", 4, "x" * 200,
                              ("fiction/sf",))
            authored = Authored(item, name)
            readers = [f"{run}-w{variant}{rnd}-{i}" for i in range(n)]
            if variant == "store":
                t = time.perf_counter()
                await store.copy_to(authored, readers, 1)
                results[variant].append(n / (time.perf_counter() - t))
            else:
                stmts = [(store._prepared[name], params)
                         for name, params in store.copy_statements(authored, readers, 1)]
                rows_per_copy = len(stmts) / n
                t = time.perf_counter()
                await asyncio.to_thread(execute_concurrent, store.session, stmts,
                                        concurrency=store.settings.write_concurrency,
                                        raise_on_first_error=True, results_generator=False)
                results[variant].append(n / (time.perf_counter() - t))
    ours, bare = (sorted(v)[len(v) // 2] for v in (results["store"], results["bare"]))
    say(f"timeline writes: store {ours:,.0f} copies/s ({rows_per_copy * ours:,.0f} rows/s), bare "
        "execute_concurrent "
        f"{bare:,.0f} copies/s, ratio {ours / bare:.2f} (medians of {args.write_rounds} rounds of {n} "
        "copies)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=1000, help="interested followers (default 1000)")
    parser.add_argument("--reviews", type=int, default=30, help="reviews fanned out (default 30)")
    parser.add_argument("--items", type=int, default=10_000, help="items in one timeline (default 10000)")
    parser.add_argument("--queries", type=int, default=300, help="GetFeed calls per variant (default 300)")
    parser.add_argument("--write-followers", type=int, default=5000, help="copies per write round (5000)")
    parser.add_argument("--write-rounds", type=int, default=5, help="write rounds per variant (default 5)")
    parser.add_argument("--concurrency", type=int, default=256, help="writes in flight (default 256)")
    parser.add_argument("--parts", default="fanout,getfeed,writes",
                        help="which measurements, comma-separated (default fanout,getfeed,writes)")
    parser.add_argument("--keep", action="store_true", help="keep the keyspace")
    args = parser.parse_args()
    up("cassandra")
    for k, v in platform_env().items():
        os.environ.setdefault(k, v)
    run = "b" + uuid.uuid4().hex[:8]
    keyspace = f"feed_bench_{run}"
    env = {"CULTURE_FEED_KEYSPACE": keyspace}
    settings = FeedSettings(keyspace=keyspace, write_concurrency=args.concurrency)
    platform = PlatformSettings()
    store = FeedStore(platform.cassandra_contact_points or "", platform.cassandra_port, settings)
    say(f"==> feed benchmark in keyspace {keyspace}; {load_note()}")
    await store.connect()
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"feed-bench-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        parts = set(args.parts.split(","))
        if "fanout" in parts:
            await fan_out_latency(store, args, run)
        if "getfeed" in parts:
            await getfeed_latency(store, env, args, run, log_dir)
        if "writes" in parts:
            await write_throughput(store, args, run)
    finally:
        if not args.keep:
            store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        await store.close()
    say(f"==> done; {load_note()}")


if __name__ == "__main__":
    asyncio.run(main())
