"""The feed's fan-out, reads, updates and follows on the stack's Cassandra (the graph replaced by a
fixed list of interested followers): redelivery writes no duplicates, pages cross bucket boundaries
exactly once in order, a celebrity's reviews are merged in at read time, updates and deletions reach
the copies, a follow backfills recent reviews, an interest gained later brings in the followed
authors' reviews in those genres, a user with a feed but no items gets an empty page."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from google.protobuf import timestamp_pb2

from culture.events.v1 import catalog_events_pb2, graph_events_pb2
from culture.feed.v1 import feed_pb2
from culture_events.codec import encode
from culture_feed import model
from culture_feed.service import FeedReader
from culture_feed.store import Authored, FeedStore
from culture_feed.worker import FollowMirror, InterestBackfill, ReviewChanges, ReviewFanOut
from culture_grpc.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


class Followers:
    """A stand-in for the graph's FollowersInterestedIn: fixed lists, paged by 3."""

    def __init__(self) -> None:
        self.of: dict[str, list[str]] = {}
        self.calls = 0

    async def page(self, author: str, genres: list[str], token: str) -> tuple[list[str], str]:
        self.calls += 1
        everyone = self.of.get(author, [])
        start = int(token or 0)
        nxt = start + 3
        return everyone[start:nxt], str(nxt) if nxt < len(everyone) else ""


def ts(when: dt.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when)
    return t


def review(author: str, review_id: str, when: dt.datetime, **kw: object) -> catalog_events_pb2.ReviewCreated:
    return catalog_events_pb2.ReviewCreated(review_id=review_id, work_id="w-" + review_id, work_title="Dune",
                                            author_user_id=author, rating=4, genre_slugs=["fiction/sf"],
                                            excerpt="good", create_time=ts(when), version=1, **kw)


class Reader:
    def __init__(self, store: FeedStore) -> None:
        self.reader = FeedReader(store, store.settings)

    async def all(self, user: str, size: int) -> list[feed_pb2.FeedItem]:
        out: list[feed_pb2.FeedItem] = []
        token = ""
        while True:
            reply = await self.reader.GetFeed(feed_pb2.GetFeedRequest(user_id=user, page_size=size,
                                                                      page_token=token), None)  # type: ignore[arg-type]
            assert len(reply.items) <= size
            out += reply.items
            if not reply.next_page_token:
                return out
            token = reply.next_page_token


def ids(unique: str, *names: str) -> list[str]:
    return [f"{unique}-{n}" for n in names]


async def test_fan_out_is_idempotent_and_pages_cross_buckets_exactly_once(feed_store: FeedStore,
                                                                           unique: str) -> None:
    author, ann, bob = ids(unique, "author", "ann", "bob")
    followers = Followers()
    followers.of[author] = [ann, bob]
    fan_out = ReviewFanOut(feed_store, followers, feed_store.settings)
    messages = []
    for i in range(23):  # every 17 minutes: 23 items over ~6.5 one-hour buckets
        msg = encode(review(author, f"{unique}-r{i}", T0 + dt.timedelta(minutes=17 * i)), key="k")
        messages.append(msg)
        await fan_out(msg)
    for msg in messages[:5]:  # redelivery: the same event ids
        await fan_out(msg.copy())
    reader = Reader(feed_store)
    for size in (1, 4, 7, 23, 100):
        items = await reader.all(ann, size)
        assert [i.review.review_id for i in items] == [f"{unique}-r{i}" for i in reversed(range(23))]
        assert len({i.item_id for i in items}) == 23
    assert len({model.bucket_of(uuid.UUID(i.item_id), 3600) for i in items}) >= 6
    assert [i.item_id for i in await reader.all(bob, 5)] != [i.item_id for i in items]  # ids per reader


async def test_recent_pages_read_the_current_and_next_bucket_first_and_cross_into_older_ones(
        feed_store: FeedStore, unique: str) -> None:
    # items around now: one in the next bucket (a writer's clock slightly ahead), several in the
    # current one, several in each of the two before it, and one two buckets ahead (read only once
    # its bucket is the next one)
    (ann,) = ids(unique, "ann")
    span = feed_store.settings.bucket_seconds
    now = dt.datetime.now(dt.UTC)
    start = dt.datetime.fromtimestamp(feed_store.bucket(model.bound_id(model.uuid_ticks(now))) * span, dt.UTC)
    times = [start + dt.timedelta(seconds=span + 1)]  # the next bucket
    times += [start + dt.timedelta(seconds=s) for s in (3, 2, 1, 0)]  # the current one, its first seconds
    times += [start - dt.timedelta(seconds=span * k + s) for k in (0, 1) for s in (1, 2, 3, 4, 5)]
    far = start + dt.timedelta(seconds=2 * span + 1)
    copies = [(Authored(model.Item(model.item_id(when, f"{unique}-e{n}", ann), f"{unique}-a",
                                   f"{unique}-r{n}"), f"{unique}-e{n}"), [ann])
              for n, when in enumerate([*times, far])]
    await feed_store.copy_many(copies, 1)
    reader = Reader(feed_store)

    def current() -> int:
        return feed_store.bucket(model.bound_id(model.uuid_ticks(dt.datetime.now(dt.UTC))))

    for size in (1, 3, 5, 6, 14, 100):
        before = current()
        got = [i.review.review_id for i in await reader.all(ann, size)]
        if current() != before or before * span != start.timestamp():
            continue  # the clock entered the next bucket meanwhile (once an hour): the far item may show
        assert got == [f"{unique}-r{n}" for n in range(len(times))], size  # newest first


async def test_a_user_with_a_feed_and_no_items_gets_an_empty_page_and_an_unknown_one_not_found(
        feed_store: FeedStore, unique: str) -> None:
    (ann,) = ids(unique, "ann")
    reader = FeedReader(feed_store, feed_store.settings)
    with pytest.raises(NotFound):
        await reader.GetFeed(feed_pb2.GetFeedRequest(user_id=ann), None)  # type: ignore[arg-type]
    await feed_store.create_feed(ann, "ann", T0)
    reply = await reader.GetFeed(feed_pb2.GetFeedRequest(user_id=ann), None)  # type: ignore[arg-type]
    assert list(reply.items) == [] and reply.next_page_token == ""
    with pytest.raises(InvalidArgument):
        await reader.GetFeed(feed_pb2.GetFeedRequest(user_id=ann, page_token="nope"), None)  # type: ignore[arg-type]


async def test_a_celebrity_is_merged_in_at_read_time(feed_store: FeedStore, unique: str) -> None:
    star, fan, other = ids(unique, "star", "fan", "other")
    fans = ids(unique, *[f"f{i}" for i in range(7)])  # above the threshold of 5
    followers = Followers()
    followers.of[star] = [fan, *fans]
    fan_out = ReviewFanOut(feed_store, followers, feed_store.settings)
    await fan_out(encode(review(star, f"{unique}-s1", T0), key="k"))
    assert await feed_store.is_celebrity(star)
    await fan_out(encode(review(star, f"{unique}-s2", T0 + dt.timedelta(hours=2)), key="k"))
    follow = FollowMirror(feed_store, feed_store.settings, graph_events_pb2.FollowCreated)
    await follow(encode(graph_events_pb2.FollowCreated(follower_user_id=fan, followee_user_id=star,
                                                       create_time=ts(T0)), key="k"))
    # fan's own timeline also has a regular author's reviews, interleaved in time
    (writer,) = ids(unique, "writer")
    followers.of[writer] = [fan]
    await ReviewFanOut(feed_store, followers, feed_store.settings)(
        encode(review(writer, f"{unique}-w1", T0 + dt.timedelta(hours=1)), key="k"))
    reader = Reader(feed_store)
    for size in (1, 2, 10):
        got = [i.review.review_id for i in await reader.all(fan, size)]
        # s1 may also be a copy (written before the threshold was crossed): shown once
        assert got == [f"{unique}-s2", f"{unique}-w1", f"{unique}-s1"], size
    assert await feed_store.timeline(other, model.bound_id((1 << 60) - 1), 10) == []


async def test_updates_and_deletions_reach_every_copy_in_any_order(feed_store: FeedStore,
                                                                   unique: str) -> None:
    author, ann = ids(unique, "author", "ann")
    followers = Followers()
    followers.of[author] = [ann]
    fan_out = ReviewFanOut(feed_store, followers, feed_store.settings)
    created = encode(review(author, f"{unique}-r1", T0), key="k")
    await fan_out(created)
    await fan_out(encode(review(author, f"{unique}-r2", T0 + dt.timedelta(minutes=1)), key="k"))
    update = ReviewChanges(feed_store, catalog_events_pb2.ReviewUpdated)
    await update(encode(catalog_events_pb2.ReviewUpdated(review_id=f"{unique}-r1", author_user_id=author,
                                                         rating=2, excerpt="meh", genre_slugs=["fiction/sf"],
                                                         version=2), key="k"))
    reader = Reader(feed_store)
    items = {i.review.review_id: i for i in await reader.all(ann, 10)}
    assert (items[f"{unique}-r1"].review.rating, items[f"{unique}-r1"].review.excerpt) == (2, "meh")
    delete = ReviewChanges(feed_store, catalog_events_pb2.ReviewDeleted)
    await delete(encode(catalog_events_pb2.ReviewDeleted(review_id=f"{unique}-r1", author_user_id=author,
                                                         version=3), key="k"))
    await fan_out(created.copy())  # a late redelivery of the creation does not bring it back
    await update(encode(catalog_events_pb2.ReviewUpdated(review_id=f"{unique}-r1", author_user_id=author,
                                                         rating=5, version=2), key="k"))
    assert [i.review.review_id for i in await reader.all(ann, 10)] == [f"{unique}-r2"]


async def test_a_follow_backfills_recent_reviews_and_an_unfollow_stops_the_merge(feed_store: FeedStore,
                                                                                 unique: str) -> None:
    author, ann = ids(unique, "author", "ann")
    followers = Followers()
    fan_out = ReviewFanOut(feed_store, followers, feed_store.settings)
    for i in range(3):
        await fan_out(encode(review(author, f"{unique}-r{i}", T0 + dt.timedelta(minutes=i)), key="k"))
    follow = FollowMirror(feed_store, feed_store.settings, graph_events_pb2.FollowCreated)
    created = encode(graph_events_pb2.FollowCreated(follower_user_id=ann, followee_user_id=author,
                                                    create_time=ts(T0)), key="k")
    await follow(created)
    await follow(created.copy())
    reader = Reader(feed_store)
    assert [i.review.review_id for i in await reader.all(ann, 10)] == [f"{unique}-r{i}" for i in (2, 1, 0)]
    assert await feed_store.following(ann) == {author}
    # the backfill copies the last CULTURE_FEED_BACKFILL_ITEMS of the followed user, no more
    (bob,) = ids(unique, "bob")
    two = feed_store.settings.model_copy(update={"backfill_items": 2})
    bob_follows = graph_events_pb2.FollowCreated(follower_user_id=bob, followee_user_id=author,
                                                 create_time=ts(T0))
    await FollowMirror(feed_store, two, graph_events_pb2.FollowCreated)(encode(bob_follows, key="k"))
    assert [i.review.review_id for i in await reader.all(bob, 10)] == [f"{unique}-r{i}" for i in (2, 1)]
    removed = FollowMirror(feed_store, feed_store.settings, graph_events_pb2.FollowRemoved)
    gone = graph_events_pb2.FollowRemoved(follower_user_id=ann, followee_user_id=author,
                                          remove_time=ts(T0 + dt.timedelta(seconds=1)))
    await removed(encode(gone, key="k"))
    await follow(created.copy())  # a late redelivery of the follow does not resurrect it
    assert await feed_store.following(ann) == set()


async def test_an_interest_that_reaches_the_graph_after_the_fan_out_brings_the_review_in(
        feed_store: FeedStore, unique: str) -> None:
    """The fan-out asks the graph who is interested at that moment: ann follows the author but her own
    rating (her interest) reached the graph only after the review's fan-out (a Kafka outage delays one
    consumer group more than the other). Her InterestsGained copies the author's reviews in the
    gained genres, not the others; a redelivery adds nothing; a celebrity's reviews are not copied
    (merged at read time)."""
    author, star, ann = ids(unique, "author", "star", "ann")
    followers = Followers()  # nobody interested yet
    fan_out = ReviewFanOut(feed_store, followers, feed_store.settings)
    follow = FollowMirror(feed_store, feed_store.settings.model_copy(update={"backfill_items": 0}),
                          graph_events_pb2.FollowCreated)
    for followee in (author, star):
        await follow(encode(graph_events_pb2.FollowCreated(follower_user_id=ann, followee_user_id=followee,
                                                           create_time=ts(T0)), key="k"))
    await fan_out(encode(review(author, f"{unique}-sf", T0 + dt.timedelta(minutes=1)), key="k"))
    poem = review(author, f"{unique}-poem", T0 + dt.timedelta(minutes=2))
    poem.ClearField("genre_slugs")
    poem.genre_slugs.append("poetry")
    await fan_out(encode(poem, key="k"))
    await fan_out(encode(review(star, f"{unique}-star", T0 + dt.timedelta(minutes=3)), key="k"))
    await feed_store.mark_celebrity(star)
    reader = Reader(feed_store)
    # before: only the celebrity's review, merged in at read time (ann follows a celebrity)
    assert [i.review.review_id for i in await reader.all(ann, 10)] == [f"{unique}-star"]

    gained = encode(graph_events_pb2.InterestsGained(user_id=ann, genre_slugs=["fiction", "fiction/sf"],
                                                     change_time=ts(T0 + dt.timedelta(minutes=5))), key="k")
    interests = InterestBackfill(feed_store, feed_store.settings)
    await interests(gained)
    await interests(gained.copy())
    assert [i.review.review_id for i in await reader.all(ann, 10)] == [f"{unique}-star", f"{unique}-sf"]
    assert [i.review_id for i in await feed_store.timeline(ann, model.bound_id((1 << 60) - 1), 10)] \
        == [f"{unique}-sf"]
    # the copy is a recorded recipient: a later deletion of the review reaches it
    deleted = catalog_events_pb2.ReviewDeleted(review_id=f"{unique}-sf", author_user_id=author, version=3)
    await ReviewChanges(feed_store, catalog_events_pb2.ReviewDeleted)(encode(deleted, key="k"))
    assert [i.review.review_id for i in await reader.all(ann, 10)] == [f"{unique}-star"]


async def test_restart_migrates_idempotently_and_refuses_another_bucket_span(feed_store: FeedStore) -> None:
    """A second store on the same keyspace (a restart) finds every table and starts; one with another
    bucket span (culture_runtime.cassandra's layout check) is refused, naming the variable."""
    again = FeedStore(",".join(feed_store.contact_points), feed_store.port, feed_store.settings)
    await again.connect()
    await again.close()
    other = feed_store.settings.model_copy(update={"bucket_seconds": feed_store.settings.bucket_seconds * 2})
    refused = FeedStore(",".join(feed_store.contact_points), feed_store.port, other)
    try:
        with pytest.raises(SystemExit) as exc:
            await refused.connect()
    finally:
        await refused.close()
    assert str(exc.value) == (f"feed: keyspace {feed_store.ks} was created with bucket_seconds="
                              f"{feed_store.settings.bucket_seconds}, CULTURE_FEED_BUCKET_SECONDS says "
                              f"{other.bucket_seconds}; they must agree")


async def test_a_new_keyspace_takes_its_replication_from_the_settings(feed_store: FeedStore) -> None:
    """CULTURE_FEED_REPLICATION_CLASS / _REPLICATION_FACTOR / _LOCAL_DC shape the keyspace a first start
    creates (here NetworkTopologyStrategy in the node's datacenter, one replica: the one node)."""
    import uuid

    dc = feed_store.session.execute("SELECT data_center FROM system.local").one().data_center
    keyspace = f"feed_r{uuid.uuid4().hex[:10]}"
    settings = feed_store.settings.model_copy(update={
        "keyspace": keyspace, "replication_class": "NetworkTopologyStrategy", "replication_factor": 1,
        "local_dc": dc})
    store = FeedStore(",".join(feed_store.contact_points), feed_store.port, settings)
    try:
        await store.connect()
        row = store.session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)).one()
        assert row.replication["class"].endswith("NetworkTopologyStrategy"), row.replication
        assert row.replication[dc] == "1", row.replication
    finally:
        if store.session is not None:
            store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        await store.close()
