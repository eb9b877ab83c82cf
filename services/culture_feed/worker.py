"""The feed's consumers. Every handler is idempotent: item ids derive from the source event and the
recipient, review cells carry the review's version as their write time, follow rows the event time,
so a redelivered, replayed or late event leaves the same tables.

Follow removal: the mirror row goes (a celebrity's reviews stop being merged in); copies already in
the timeline stay, as on Twitter. New reviews of the unfollowed author never reach the former
follower, since the graph no longer lists them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import timestamp_pb2

from culture.events.v1 import catalog_events_pb2, feed_events_pb2, graph_events_pb2, identity_events_pb2
from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_contracts.topics import key_of, topic_of
from culture_events.codec import decode, encode
from culture_events.errors import PermanentError
from culture_events.handling import Handler, Middleware
from culture_events.message import Message, Meta
from culture_events.middleware import PoisonQueue, correlation_id, recoverer, timeout
from culture_feed import model
from culture_feed.settings import FeedSettings
from culture_feed.store import Authored, FeedStore
from culture_runtime.worker import Wiring

log = logging.getLogger("culture_feed")

Publish = Callable[[str, Message], Awaitable[None]]


def cassandra_outage(exc: BaseException) -> bool:
    """Whether `exc` says Cassandra is unreachable or overloaded (not a problem of the message)."""
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable

    return isinstance(exc, NoHostAvailable | OperationTimedOut | Unavailable | ReadTimeout | WriteTimeout)


def wait_out_store_outages(is_outage: Callable[[BaseException], bool] = cassandra_outage, *,
                           initial: float = 0.5, maximum: float = 10.0,
                           sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Middleware:
    """Middleware (between the poison queue and the retries): when the handler still fails after its
    retries because the feed's own store is down, wait (backoff up to `maximum`) and handle the
    message again, for as long as the outage lasts, instead of poisoning it: every event would
    otherwise be poisoned while Cassandra is away. A shutdown meanwhile leaves the message
    unacknowledged, so it is redelivered."""

    def wrap(handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            delay = initial
            while True:
                try:
                    return await handler(msg)
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    log.warning("feed: Cassandra unavailable (%s: %s); message %s waits %.1fs",
                                type(exc).__name__, exc, msg.id, delay)
                    await sleep(delay)
                    delay = min(maximum, delay * 2)

        return handle

    return wrap


def feed_chain(wiring: Wiring) -> list[Middleware]:
    """The standard order with the outage wait between the poison queue and the retries."""
    settings = wiring.settings
    return [correlation_id, PoisonQueue(wiring.publisher, settings.poison_topic), wait_out_store_outages(),
            settings.retry(), timeout(settings.handler_timeout_seconds), recoverer]


def _when(ts: timestamp_pb2.Timestamp, fallback: Message) -> dt.datetime:
    if ts.seconds or ts.nanos:
        return ts.ToDatetime(tzinfo=dt.UTC)
    occurred = fallback.metadata.get(Meta.OCCURRED_AT)
    if occurred:
        return dt.datetime.fromisoformat(occurred.replace("Z", "+00:00"))
    raise PermanentError(f"event {fallback.id} has no time")


def _micros(when: dt.datetime) -> int:
    return round(when.timestamp() * 1_000_000)


def _derived_event_id(msg: Message, what: str) -> str:
    """The id of the event a handler emits for `msg`: the same on every redelivery."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"culture-feed:{what}:{msg.id}"))


class FeedCreator:
    """identity.user-registered -> the feed row and FeedCreated, or FeedCreationFailed (the catalog
    then marks the profile incomplete) when the admission policy refuses the user. A failure of
    Cassandra is retried (then poisoned) by the middleware: it is not a refusal."""

    def __init__(self, store: FeedStore, settings: FeedSettings, publish: Publish,
                 topic: Callable[[str], str]) -> None:
        self.store, self.settings, self.publish, self.topic = store, settings, publish, topic

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, identity_events_pb2.UserRegistered, max_schema_version=1)
        if not event.user_id:
            raise PermanentError(f"UserRegistered {msg.id} has no user_id")
        now = dt.datetime.now(dt.UTC)
        reason = model.refused(event.username, self.settings.refused_usernames)
        out: feed_events_pb2.FeedCreated | feed_events_pb2.FeedCreationFailed
        if reason is not None:
            log.info("feed of %s refused: %s", event.user_id, reason)
            out = feed_events_pb2.FeedCreationFailed(user_id=event.user_id, reason=reason, attempts=1)
            out.fail_time.FromDatetime(now)
        else:
            await self.store.create_feed(event.user_id, event.username, _when(event.register_time, msg))
            out = feed_events_pb2.FeedCreated(user_id=event.user_id)
            out.create_time.FromDatetime(now)
        metadata = {k: msg.metadata[k] for k in (Meta.CORRELATION_ID,) if k in msg.metadata}
        metadata[Meta.CAUSATION_ID] = msg.id
        reply = encode(out, key=key_of(out), event_id=_derived_event_id(msg, type(out).__name__),
                       metadata=metadata)
        await self.publish(self.topic(topic_of(out)), reply)
        return []


class FollowersSource:
    """The graph's FollowersInterestedIn, page by page."""

    def __init__(self, stub: Callable[[], graph_pb2_grpc.GraphServiceStub], settings: FeedSettings) -> None:
        self.stub, self.settings = stub, settings  # a callable: the channel is made on the running loop

    async def page(self, author: str, genres: list[str], token: str) -> tuple[list[str], str]:
        request = graph_pb2.FollowersInterestedInRequest(user_id=author, genre_slugs=genres,
                                                         page_size=self.settings.interested_page_size,
                                                         page_token=token)
        try:
            reply = await self.stub().FollowersInterestedIn(request,
                                                            timeout=self.settings.graph_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return [], ""  # the author is not in the graph (yet): nobody to fan out to
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise PermanentError(f"the graph refused the fan-out query: {exc.details()}") from None
            raise
        return list(reply.follower_user_ids), reply.next_page_token


class ReviewFanOut:
    """catalog.review-created -> the author's item, then copies in the timelines of the followers
    interested in the review's genres: pages of followers are written as bounded concurrent
    batches while the next page is fetched. An author found to have more interested followers than
    the celebrity threshold is marked a celebrity: copying stops, readers merge the author's
    reviews in (copies already written are deduplicated at read time: same ids)."""

    def __init__(self, store: FeedStore, followers: FollowersSource, settings: FeedSettings,
                 on_copied: Callable[[Authored, list[str]], Awaitable[None]] | None = None) -> None:
        self.store, self.followers, self.settings = store, followers, settings
        self.on_copied = on_copied

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, catalog_events_pb2.ReviewCreated)
        if not (event.review_id and event.author_user_id):
            raise PermanentError(f"ReviewCreated {msg.id} lacks review_id or author_user_id")
        version = event.version or 1
        state = await self.store.review_state(event.review_id)
        if state is not None and state.deleted:
            log.info("review %s is deleted: no fan-out", event.review_id)
            return []
        when = _when(event.create_time, msg)
        item = model.Item(item_id=model.item_id(when, msg.id, event.author_user_id),
                          actor_user_id=event.author_user_id, review_id=event.review_id,
                          work_id=event.work_id, work_title=event.work_title, rating=event.rating,
                          excerpt=event.excerpt[:280], genre_slugs=tuple(event.genre_slugs))
        authored = Authored(item, msg.id)
        await self.store.record_authored(authored, version)
        if not event.genre_slugs or await self.store.is_celebrity(event.author_user_id):
            return []
        await self.fan_out(authored, list(event.genre_slugs), version)
        return []

    async def fan_out(self, authored: Authored, genres: list[str], version: int) -> int:
        """Copy to every interested follower (or stop at the celebrity threshold); how many copies."""
        author = authored.item.actor_user_id
        copied = 0
        recipients, token = await self.followers.page(author, genres, "")
        while recipients:
            if copied + len(recipients) > self.settings.celebrity_threshold:
                log.info("author %s has more than %d interested followers: a celebrity, merged at read",
                         author, self.settings.celebrity_threshold)
                await self.store.mark_celebrity(author)
                return copied
            following = asyncio.ensure_future(self.followers.page(author, genres, token)) if token else None
            try:
                await self.store.copy_to(authored, recipients, version)
            except BaseException:
                if following is not None:
                    following.cancel()
                raise
            copied += len(recipients)
            if self.on_copied is not None:
                await self.on_copied(authored, recipients)
            recipients, token = await following if following is not None else ([], "")
        return copied


class ReviewChanges:
    """catalog.review-updated / review-deleted -> the item and its copies change or go."""

    def __init__(self, store: FeedStore, cls: type) -> None:
        self.store, self.cls = store, cls

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        if not (event.review_id and event.author_user_id):
            raise PermanentError(f"{self.cls.__name__} {msg.id} lacks review_id or author_user_id")
        if self.cls is catalog_events_pb2.ReviewDeleted:
            n = await self.store.delete_review(event.review_id, event.author_user_id, event.version or 2)
            log.info("review %s deleted: %d copies removed", event.review_id, n)
        else:
            n = await self.store.update_review(event.review_id, event.version or 2, event.rating,
                                               event.excerpt[:280], list(event.genre_slugs))
            log.info("review %s updated: %d copies", event.review_id, n)
        return []


class FollowMirror:
    """graph.follow-created -> the mirror row and a backfill of the followee's recent reviews (unless
    a celebrity, whose reviews are merged at read time); graph.follow-removed -> the row goes."""

    def __init__(self, store: FeedStore, settings: FeedSettings, cls: type,
                 on_copied: Callable[[Authored, list[str]], Awaitable[None]] | None = None) -> None:
        self.store, self.settings, self.cls = store, settings, cls
        self.on_copied = on_copied

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        follower, followee = event.follower_user_id, event.followee_user_id
        if not (follower and followee):
            raise PermanentError(f"{self.cls.__name__} {msg.id} lacks a user id")
        if self.cls is graph_events_pb2.FollowRemoved:
            await self.store.unfollow(follower, followee, _micros(_when(event.remove_time, msg)))
            return []
        await self.store.follow(follower, followee, _micros(_when(event.create_time, msg)))
        if not await self.store.is_celebrity(followee):
            await backfill(self.store, self.settings, follower, [followee], on_copied=self.on_copied)
        return []


async def backfill(store: FeedStore, settings: FeedSettings, reader: str, authors: list[str], *,
                   genres: set[str] | None = None,
                   on_copied: Callable[[Authored, list[str]], Awaitable[None]] | None = None) -> int:
    """Copy into `reader`'s timeline each author's last `settings.backfill_items` reviews (only those in
    one of `genres`, when given); how many copies. Idempotent: a copy's id is that of the fan-out's."""
    k = settings.backfill_items
    if not k:
        return 0
    newest = model.bound_id((1 << 60) - 1)
    copies = []
    for start in range(0, len(authors), 32):  # the authors' reads 32 at a time (a reader may follow many)
        for recent in await asyncio.gather(*(store.authored_items(author, newest, k)
                                             for author in authors[start:start + 32])):
            copies += [a for a in recent if genres is None or genres.intersection(a.item.genre_slugs)]
    if copies:
        await store.copy_many([(a, [reader]) for a in copies], 1)
        if on_copied is not None:
            await on_copied(copies[0], [reader])
    return len(copies)


class InterestBackfill:
    """graph.interests-gained -> copies, in the user's timeline, of the recent reviews in the newly
    gained genres by the people the user follows (the `following` mirror; celebrities are merged at
    read time). A review's fan-out asks the graph who is interested at that moment: a rating that
    reached the graph later (its event delayed, e.g. through a Kafka outage, or handled after the
    review's by the other consumer group) would otherwise never bring that review in. Reviews older
    than each author's last `backfill_items` are not copied (as for a new follow)."""

    def __init__(self, store: FeedStore, settings: FeedSettings,
                 on_copied: Callable[[Authored, list[str]], Awaitable[None]] | None = None) -> None:
        self.store, self.settings, self.on_copied = store, settings, on_copied

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, graph_events_pb2.InterestsGained)
        if not event.user_id:
            raise PermanentError(f"InterestsGained {msg.id} has no user_id")
        if not event.genre_slugs:
            return []
        authors = await self.store.following(event.user_id)
        if authors:
            authors -= await self.store.celebrities()
        n = await backfill(self.store, self.settings, event.user_id, sorted(authors),
                           genres=set(event.genre_slugs), on_copied=self.on_copied)
        log.info("interests of %s grew (%s): %d copies from %d followed authors", event.user_id,
                 ", ".join(event.genre_slugs), n, len(authors))
        return []
