"""The catalog's works, reviews, cache and profile compensation on the real stack (SecantusDB,
Redis, Kafka), with every role a `culture serve catalog` subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from _consumers_support import (
    BOOTSTRAP,
    Role,
    TopicWatch,
    free_port,
    ns,
    publish_event,
    start_at_end,
    user_registered,
)
from google.protobuf import field_mask_pb2
from motor.motor_asyncio import AsyncIOMotorClient
from prometheus_client.parser import text_string_to_metric_families

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture.events.v1 import catalog_events_pb2, feed_events_pb2, identity_events_pb2
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.testing import wait_until
from culture_events.testing.kafka_proxy import KafkaProxy
from culture_grpc.errors import field_violations_of
from culture_runtime.settings import PlatformSettings
from culture_stack.ports import HOST
from culture_stack.server import Context

pytestmark = pytest.mark.integration

WORK_CREATED = topic_of(catalog_events_pb2.WorkCreated)
WORK_UPDATED = topic_of(catalog_events_pb2.WorkUpdated)
REVIEW_CREATED = topic_of(catalog_events_pb2.ReviewCreated)
REVIEW_UPDATED = topic_of(catalog_events_pb2.ReviewUpdated)
REVIEW_DELETED = topic_of(catalog_events_pb2.ReviewDeleted)
CATALOG_TOPICS = (WORK_CREATED, WORK_UPDATED, REVIEW_CREATED, REVIEW_UPDATED, REVIEW_DELETED)


class Catalog:
    """The four catalog roles of one test, and stubs to its two APIs."""

    def __init__(self, write: Role, read: Role, database: str) -> None:
        self.write_channel = grpc.aio.insecure_channel(f"{HOST}:{write.port}")
        self.read_channel = grpc.aio.insecure_channel(f"{HOST}:{read.port}")
        self.w = catalog_pb2_grpc.CatalogServiceStub(self.write_channel)
        self.r = catalog_pb2_grpc.CatalogServiceStub(self.read_channel)
        self.mongo = AsyncIOMotorClient(PlatformSettings().mongo_uri, tz_aware=True)
        self.db = self.mongo[database]

    async def close(self) -> None:
        await self.write_channel.close()
        await self.read_channel.close()
        self.mongo.close()


@pytest_asyncio.fixture
async def catalog(
    consumer_servers: Context, unique: str, roles: Callable[..., Role], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Catalog, dict[str, Any]]]:
    """api-write, api-read and worker of a fresh database; the relay is the test's (it may need a proxy)."""
    database = f"catalog_{unique}"
    env = {
        "CULTURE_CATALOG_CONSUMER_GROUP": f"catalog-{unique}",
        "CULTURE_CATALOG_DATABASE": database,
        "CULTURE_CATALOG_CACHE_PREFIX": f"{unique}:",
        "CULTURE_CATALOG_RELAY_POLL_SECONDS": "0.3",
    }
    await start_at_end(
        env["CULTURE_CATALOG_CONSUMER_GROUP"],
        [
            ns(t)
            for t in (
                *CATALOG_TOPICS,
                topic_of(identity_events_pb2.UserRegistered),
                topic_of(feed_events_pb2.FeedCreationFailed),
            )
        ],
    )
    started = [roles("catalog", r, env) for r in ("api-write", "api-read", "worker")]
    for role in started:
        await role.serving()
    cat = Catalog(started[0], started[1], database)
    try:
        yield cat, env
    finally:
        await cat.close()
        for role in started:
            role.stop()  # every session ended before the drop (SecantusDB hangs otherwise)
        client = AsyncIOMotorClient(PlatformSettings().mongo_uri)
        await client.drop_database(database)
        client.close()


def book(
    title: str,
    *,
    authors: Sequence[str] = ("Ann Author",),
    genres: Sequence[str] = ("fiction",),
    year: int = 2000,
    tags: Sequence[str] = (),
) -> catalog_pb2.Work:
    return catalog_pb2.Work(
        title=title,
        release_year=year,
        genre_paths=list(genres),
        tags=[catalog_pb2.Tag(slug=t) for t in tags],
        book=catalog_pb2.BookDetails(authors=list(authors), isbn="9780306406157"),
    )


def film(
    title: str, *, directors: Sequence[str], genres: Sequence[str], year: int = 2000
) -> catalog_pb2.Work:
    return catalog_pb2.Work(
        title=title,
        release_year=year,
        genre_paths=list(genres),
        film=catalog_pb2.FilmDetails(directors=list(directors), runtime_minutes=100, countries=["IT"]),
    )


async def create(cat: Catalog, work: catalog_pb2.Work, user: str = "u-creator") -> catalog_pb2.Work:
    reply = await cat.w.CreateWork(catalog_pb2.CreateWorkRequest(work=work, creator_user_id=user), timeout=30)
    return reply.work


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_works_create_list_search_and_concurrent_updates(
    catalog: tuple[Catalog, dict[str, Any]],
    roles: Callable[..., Role],
    watch: Callable[[Sequence[str]], Awaitable[TopicWatch]],
) -> None:
    cat, env = catalog
    seen = await watch([ns(WORK_CREATED), ns(WORK_UPDATED)])
    relay = roles("catalog", "relay", env)
    await relay.serving()
    neu = await create(
        cat,
        book(
            "Neuromancer",
            authors=["William Gibson"],
            genres=["fiction/science-fiction/cyberpunk", "fiction/thriller"],
            year=1984,
            tags=["hackers"],
        ),
    )
    dune = await create(
        cat, book("Dune", authors=["Frank Herbert"], genres=["fiction/science-fiction"], year=1965)
    )
    amelie = await create(
        cat,
        film(
            "Le Fabuleux Destin d'Amélie Poulain",
            directors=["Jean-Pierre Jeunet"],
            genres=["film/comedy/romantic-comedy"],
            year=2001,
        ),
    )
    assert (
        neu.version == 1
        and neu.kind == catalog_pb2.WORK_KIND_BOOK
        and next(iter(neu.genre_paths)).endswith("cyberpunk")
    )

    # genre descendants: "fiction/science-fiction" finds the cyberpunk book and Dune, not the film
    page = await cat.r.ListWorks(
        catalog_pb2.ListWorksRequest(genre_path="fiction/science-fiction"), timeout=30
    )
    assert {w.work_id for w in page.works} == {neu.work_id, dune.work_id}
    page = await cat.r.ListWorks(catalog_pb2.ListWorksRequest(kind=catalog_pb2.WORK_KIND_FILM), timeout=30)
    assert [w.work_id for w in page.works] == [amelie.work_id]
    page = await cat.r.ListWorks(
        catalog_pb2.ListWorksRequest(tag_slug="hackers", min_year=1980, max_year=1990), timeout=30
    )
    assert [w.work_id for w in page.works] == [neu.work_id]

    # search: case- and accent-insensitive, by title words, prefixes and people; ranked
    found = await cat.r.SearchWorks(catalog_pb2.SearchWorksRequest(query="AMELIE"), timeout=30)
    assert [w.work_id for w in found.works] == [amelie.work_id]
    found = await cat.r.SearchWorks(catalog_pb2.SearchWorksRequest(query="jeunet"), timeout=30)
    assert [w.work_id for w in found.works] == [amelie.work_id]
    found = await cat.r.SearchWorks(catalog_pb2.SearchWorksRequest(query="neuro gibson"), timeout=30)
    assert [w.work_id for w in found.works] == [neu.work_id]
    found = await cat.r.SearchWorks(catalog_pb2.SearchWorksRequest(query="frank"), timeout=30)
    assert [w.work_id for w in found.works] == [dune.work_id]

    # pagination stays stable while others insert: every pre-existing work exactly once
    before = [await create(cat, book(f"Shelf {i}", genres=["shelf"])) for i in range(12)]
    pages: list[str] = []
    token = ""
    inserts = 0
    while True:
        reply = await cat.r.ListWorks(
            catalog_pb2.ListWorksRequest(genre_path="shelf", page_size=5, page_token=token), timeout=30
        )
        pages += [w.work_id for w in reply.works]
        await asyncio.gather(
            *(create(cat, book(f"Shelf new {inserts}-{j}", genres=["shelf"])) for j in range(2))
        )
        inserts += 1
        token = reply.next_page_token
        if not token:
            break
    assert len(pages) == len(set(pages))
    assert {w.work_id for w in before} <= set(pages)

    # two concurrent updates of the same version: one wins, one FAILED_PRECONDITION
    def update(title: str) -> Awaitable[catalog_pb2.UpdateWorkResponse]:
        work = catalog_pb2.Work(work_id=dune.work_id, version=1, title=title)
        return cat.w.UpdateWork(
            catalog_pb2.UpdateWorkRequest(
                work=work, editor_user_id="u-creator", update_mask=field_mask_pb2.FieldMask(paths=["title"])
            ),
            timeout=60,
        )

    results = await asyncio.gather(update("Dune (A)"), update("Dune (B)"), return_exceptions=True)
    ok = [r for r in results if isinstance(r, catalog_pb2.UpdateWorkResponse)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(failed) == 1, results
    assert failed[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ok[0].work.version == 2
    other = await rpc_error(
        cat.w.UpdateWork(
            catalog_pb2.UpdateWorkRequest(
                work=catalog_pb2.Work(work_id=dune.work_id, version=2, title="mine"),
                editor_user_id="u-someone-else",
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            ),
            timeout=30,
        )
    )
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED
    got = await cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id=dune.work_id), timeout=30)
    assert got.work.title == ok[0].work.title and got.work.version == 2
    batch = await cat.r.BatchGetWorks(
        catalog_pb2.BatchGetWorksRequest(work_ids=[dune.work_id, "no-such-work", neu.work_id]), timeout=30
    )
    assert [w.work_id for w in batch.works] == [dune.work_id, neu.work_id]
    assert list(batch.missing_work_ids) == ["no-such-work"] and batch.works[0].version == 2

    # the graph's events: WorkCreated per work, WorkUpdated with the new version
    created = await wait_until(lambda: seen.on(ns(WORK_CREATED), neu.work_id), 60, "WorkCreated",
                               interval=0.1)
    event = decode(created[0], catalog_events_pb2.WorkCreated)
    assert list(event.genre_paths) == ["fiction/science-fiction/cyberpunk", "fiction/thriller"]
    assert event.kind == "book" and event.version == 1
    updated = await wait_until(lambda: seen.on(ns(WORK_UPDATED), dune.work_id), 60, "WorkUpdated",
                               interval=0.1)
    assert decode(updated[0], catalog_events_pb2.WorkUpdated).version == 2


async def test_bad_input_is_invalid_argument_with_the_field(catalog: tuple[Catalog, dict[str, Any]]) -> None:
    cat, _ = catalog
    work = await create(cat, book("Solaris", authors=["Stanisław Lem"]))
    cases: list[tuple[Awaitable[Any], str]] = []
    for rating in (0, 6):
        cases.append(
            (
                cat.w.CreateReview(
                    catalog_pb2.CreateReviewRequest(
                        work_id=work.work_id, author_user_id="u-1", rating=rating
                    ),
                    timeout=30,
                ),
                "rating",
            )
        )
    cases.append(
        (
            cat.w.CreateReview(
                catalog_pb2.CreateReviewRequest(
                    work_id=work.work_id, author_user_id="u-1", rating=3, body="x" * 10_001
                ),
                timeout=30,
            ),
            "body",
        )
    )
    cases.append(
        (
            cat.w.CreateReview(
                catalog_pb2.CreateReviewRequest(
                    work_id=work.work_id, author_user_id="u-1", rating=3, title="a\x00b"
                ),
                timeout=30,
            ),
            "title",
        )
    )
    cases.append(
        (
            cat.w.CreateWork(
                catalog_pb2.CreateWorkRequest(work=book("Bad\x00title"), creator_user_id="u-1"), timeout=30
            ),
            "work.title",
        )
    )
    cases.append(
        (
            cat.w.CreateWork(
                catalog_pb2.CreateWorkRequest(work=book("T", authors=["bell\x07"]), creator_user_id="u-1"),
                timeout=30,
            ),
            "work.book.authors[0]",
        )
    )
    bad_isbn = book("Isbn")
    bad_isbn.book.isbn = "9780306406158"
    cases.append(
        (
            cat.w.CreateWork(catalog_pb2.CreateWorkRequest(work=bad_isbn, creator_user_id="u-1"), timeout=30),
            "work.book.isbn",
        )
    )
    cases.append(
        (
            cat.w.CreateWork(
                catalog_pb2.CreateWorkRequest(work=book("G", genres=["Fiction//x"]), creator_user_id="u-1"),
                timeout=30,
            ),
            "work.genre_paths[0]",
        )
    )
    cases.append(
        (
            cat.w.UpdateProfile(
                catalog_pb2.UpdateProfileRequest(profile=catalog_pb2.Profile(user_id="u-1", bio="\x1b[31m")),
                timeout=30,
            ),
            "profile.bio",
        )
    )
    cases.append((cat.r.SearchWorks(catalog_pb2.SearchWorksRequest(query="\x00"), timeout=30), "query"))
    for call, field in cases:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert field in field_violations_of(error), (field, field_violations_of(error))
    missing = await rpc_error(
        cat.w.CreateReview(
            catalog_pb2.CreateReviewRequest(work_id="no-such-work", author_user_id="u-1", rating=3),
            timeout=30,
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    missing = await rpc_error(cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id="no-such-work"), timeout=30))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    # 2.5 cannot even be encoded as the int32 rating: the client library refuses it
    with pytest.raises(TypeError):
        catalog_pb2.CreateReviewRequest(work_id=work.work_id, author_user_id="u-1", rating=2.5)  # type: ignore[arg-type]
    assert await cat.db.reviews.count_documents({}) == 0


async def test_concurrent_reviews_exact_aggregate_once_on_kafka_while_it_is_down_and_cache_follows(
    catalog: tuple[Catalog, dict[str, Any]],
    roles: Callable[..., Role],
    watch: Callable[[Sequence[str]], Awaitable[TopicWatch]],
) -> None:
    cat, env = catalog
    seen = await watch([ns(REVIEW_CREATED), ns(REVIEW_UPDATED), ns(REVIEW_DELETED)])
    host, _, port = BOOTSTRAP.rpartition(":")
    proxy = KafkaProxy(host, int(port))
    await proxy.open()
    relay = roles("catalog", "relay", {**env, "CULTURE_KAFKA_BOOTSTRAP": proxy.bootstrap})
    try:
        await relay.serving()
        work = await create(cat, book("Hyperion", genres=["fiction/science-fiction/space-opera"]))
        cached = await cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id=work.work_id), timeout=30)  # fills it
        assert cached.work.rating.count == 0
        await proxy.close()  # Kafka is down for the relay from now on

        ratings = {f"u-rev-{i:03d}": i % 5 + 1 for i in range(100)}
        replies = await asyncio.gather(
            *(
                cat.w.CreateReview(
                    catalog_pb2.CreateReviewRequest(
                        work_id=work.work_id, author_user_id=user, rating=rating, body=f"review by {user}"
                    ),
                    timeout=120,
                )
                for user, rating in ratings.items()
            )
        )
        assert len({r.review.review_id for r in replies}) == 100 and all(r.job_id for r in replies)
        doc = await cat.db.works.find_one({"_id": work.work_id})
        assert doc["rating"]["count"] == 100 and doc["rating"]["sum"] == sum(ratings.values())
        assert doc["rating"]["hist"] == {str(s): 20 for s in range(1, 6)}

        # a second review by the same user: ALREADY_EXISTS, nothing written
        # (compared by id: the relay may still deliver an entry written before the proxy closed)
        outbox_before = set(await cat.db.catalog_outbox.distinct("_id"))
        again = await rpc_error(
            cat.w.CreateReview(
                catalog_pb2.CreateReviewRequest(work_id=work.work_id, author_user_id="u-rev-000", rating=5),
                timeout=30,
            )
        )
        assert again.code() == grpc.StatusCode.ALREADY_EXISTS
        assert await cat.db.reviews.count_documents({"work_id": work.work_id}) == 100
        assert (await cat.db.works.find_one({"_id": work.work_id}))["rating"]["count"] == 100
        assert set(await cat.db.catalog_outbox.distinct("_id")) <= outbox_before  # no new event

        await proxy.open()  # Kafka is back: every ReviewCreated exactly once
        ids = {r.review.review_id for r in replies}
        await wait_until(lambda: {m.key for m in seen.on(ns(REVIEW_CREATED))} >= ids, 120,
                         "100 ReviewCreated", interval=0.1)
        await wait_until(lambda: _outbox_empty(cat), 60, "the outbox to drain", interval=0.1)
        keys = [m.key for m in seen.on(ns(REVIEW_CREATED)) if m.key in ids]
        assert len(keys) == 100
        event = decode(
            seen.on(ns(REVIEW_CREATED), replies[0].review.review_id)[0], catalog_events_pb2.ReviewCreated
        )
        assert event.work_kind == "book" and event.version == 1 and event.work_id == work.work_id
        assert list(event.genre_slugs) == ["fiction/science-fiction/space-opera"] and event.author_user_id

        # the cache: after the events, GetWork shows the new aggregate, and never the old one again
        async def rating_count() -> int:
            got = await cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id=work.work_id), timeout=30)
            return got.work.rating.count

        assert await rating_count() == 100
        summary = (
            await cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id=work.work_id), timeout=30)
        ).work.rating
        assert list(summary.histogram) == [20] * 5 and summary.average == 3.0

        # update and delete keep it exact, and each emits its event
        first = replies[0].review  # rating 1
        updated = await cat.w.UpdateReview(
            catalog_pb2.UpdateReviewRequest(
                review_id=first.review_id,
                author_user_id=first.author_user_id,
                rating=5,
                update_mask=field_mask_pb2.FieldMask(paths=["rating"]),
            ),
            timeout=30,
        )
        assert updated.review.version == 2
        second = replies[1].review  # rating 2
        deleted = await cat.w.DeleteReview(
            catalog_pb2.DeleteReviewRequest(review_id=second.review_id, author_user_id=second.author_user_id),
            timeout=30,
        )
        assert deleted.version == 2
        for _ in range(3):  # read repeatedly: a stale entry must not come back
            got = (
                await cat.r.GetWork(catalog_pb2.GetWorkRequest(work_id=work.work_id), timeout=30)
            ).work.rating
            assert got.count == 99 and list(got.histogram) == [19, 19, 20, 20, 21]
        upd = await wait_until(lambda: seen.on(ns(REVIEW_UPDATED), first.review_id), 60, "ReviewUpdated",
                               interval=0.1)
        assert decode(upd[0], catalog_events_pb2.ReviewUpdated).previous_rating == 1
        dele = await wait_until(lambda: seen.on(ns(REVIEW_DELETED), second.review_id), 60, "ReviewDeleted",
                                interval=0.1)
        assert decode(dele[0], catalog_events_pb2.ReviewDeleted).version == 2
        listed = await cat.r.ListReviews(
            catalog_pb2.ListReviewsRequest(work_id=work.work_id, page_size=60), timeout=30
        )
        rest = await cat.r.ListReviews(
            catalog_pb2.ListReviewsRequest(
                work_id=work.work_id, page_size=60, page_token=listed.next_page_token
            ),
            timeout=30,
        )
        assert len({r.review_id for r in [*listed.reviews, *rest.reviews]}) == 99 and not rest.next_page_token
    finally:
        relay.stop()
        await proxy.close()


async def _outbox_empty(cat: Catalog) -> bool:
    return await cat.db.catalog_outbox.count_documents({}) == 0


async def test_feed_creation_failed_marks_the_profile_incomplete_once(
    catalog: tuple[Catalog, dict[str, Any]],
    roles: Callable[..., Role],
    unique: str,
    watch: Callable[[Sequence[str]], Awaitable[TopicWatch]],
) -> None:
    cat, env = catalog
    marked_topic = ns(topic_of(catalog_events_pb2.ProfileMarkedIncomplete))
    seen = await watch([marked_topic])
    relay = roles("catalog", "relay", env)
    await relay.serving()
    registered = user_registered(unique)
    await publish_event(registered, job_id=f"job-{unique}")
    await wait_until(lambda: cat.db.profiles.find_one({"_id": registered.user_id}), 60, "the profile",
                     interval=0.1)

    failed = feed_events_pb2.FeedCreationFailed(
        user_id=registered.user_id, reason="cassandra unreachable", attempts=5
    )
    first = await publish_event(failed, job_id=f"job-{unique}")
    await publish_event(failed, job_id=f"job-{unique}", event_id=first.id)  # redelivered
    marked = await wait_until(lambda: seen.on(marked_topic, registered.user_id), 60,
                              "ProfileMarkedIncomplete", interval=0.1)
    event = decode(marked[0], catalog_events_pb2.ProfileMarkedIncomplete)
    assert event.failed_step == "feed.timeline" and event.reason == "cassandra unreachable"
    assert marked[0].metadata["correlation_id"] == f"job-{unique}"
    profile = (
        await cat.r.GetProfile(catalog_pb2.GetProfileRequest(user_id=registered.user_id), timeout=30)
    ).profile
    assert profile.state == catalog_pb2.PROFILE_STATE_INCOMPLETE
    assert profile.incomplete_reason == "cassandra unreachable"
    await wait_until(lambda: _outbox_empty(cat), 60, "the outbox to drain",
                     interval=0.1)
    assert len(seen.on(marked_topic, registered.user_id)) == 1

    # and the profile's own fields are the user's to change
    reply = await cat.w.UpdateProfile(
        catalog_pb2.UpdateProfileRequest(
            profile=catalog_pb2.Profile(
                user_id=registered.user_id,
                bio="Reads at night",
                favorite_genre_slugs=["fiction/science-fiction"],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["bio", "favorite_genre_slugs"]),
        ),
        timeout=30,
    )
    assert reply.profile.bio == "Reads at night" and list(reply.profile.favorite_genre_slugs) == [
        "fiction/science-fiction"
    ]


async def test_the_cache_hit_ratio_is_served_on_the_metrics_endpoint(
    catalog: tuple[Catalog, dict[str, Any]], roles: Callable[..., Role]
) -> None:
    """An api-read role started with CULTURE_METRICS_PORT serves GET /metrics: its cache lookups by
    result and the hit ratio, as Prometheus scrapes them in a cluster."""
    cat, env = catalog
    port = free_port()
    reader = roles("catalog", "api-read", {**env, "CULTURE_METRICS_PORT": str(port)})
    await reader.serving()
    work = await create(cat, book("Metrics"))
    async with grpc.aio.insecure_channel(f"{HOST}:{reader.port}") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        for _ in range(4):
            got = await stub.GetWork(catalog_pb2.GetWorkRequest(work_id=work.work_id), timeout=30)
            assert got.work.title == "Metrics"
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://{HOST}:{port}/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {(s.name, s.labels.get("result", "")): s.value
               for family in text_string_to_metric_families(reply.text) for s in family.samples}
    hits = samples.get(("culture_catalog_cache_requests_total", "hit"), 0.0)
    misses = samples.get(("culture_catalog_cache_requests_total", "miss"), 0.0)
    assert hits + misses == 4 and misses >= 1 and hits >= 1, samples
    assert samples[("culture_catalog_cache_hit_ratio", "")] == pytest.approx(hits / 4)
