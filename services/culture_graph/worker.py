"""The graph's consumers. Every handler is idempotent and order-tolerant: versions and event times
decide, so a redelivered, replayed or out-of-order event leaves the same graph."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events.codec import decode, encode
from culture_events.errors import PermanentError
from culture_events.message import Message, Meta
from culture_graph import model
from culture_graph.store import GraphStore

log = logging.getLogger("culture_graph")


class UserCreator:
    """identity.user-registered -> (:User), then UserNodeCreated (the registration job's graph step;
    the same event id on a redelivery), when given somewhere to publish it."""

    def __init__(self, store: GraphStore,
                 publish: Callable[[str, Message], Awaitable[None]] | None = None,
                 topic: Callable[[str], str] = lambda name: name) -> None:
        self.store = store
        self.publish, self.topic = publish, topic

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, identity_events_pb2.UserRegistered, max_schema_version=1)
        if not event.user_id:
            raise PermanentError(f"UserRegistered {msg.id} has no user_id")
        await self.store.upsert_user(event.user_id, model.timestamp_us(event.register_time))
        if self.publish is not None:
            done = graph_events_pb2.UserNodeCreated(user_id=event.user_id)
            done.create_time.FromDatetime(dt.datetime.now(dt.UTC))
            metadata = {k: msg.metadata[k] for k in (Meta.CORRELATION_ID,) if k in msg.metadata}
            metadata[Meta.CAUSATION_ID] = msg.id
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"culture-graph:user-node:{msg.id}"))
            await self.publish(self.topic(topic_of(done)),
                               encode(done, key=key_of(done), event_id=event_id, metadata=metadata))
        return []


class WorkMirror:
    """catalog.work-created / work-updated -> (:Work), its (:Genre)s and their hierarchy."""

    def __init__(self, store: GraphStore, cls: type) -> None:
        self.store = store
        self.cls = cls

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        if not event.work_id:
            raise PermanentError(f"{self.cls.__name__} {msg.id} has no work_id")
        applied = await self.store.upsert_work(event.work_id, event.version or 1, event.kind, event.title,
                                               list(event.genre_paths))
        if not applied:
            log.info("work %s version %s is not newer than the graph's; ignored", event.work_id,
                     event.version)
        return []


class RatingMirror:
    """catalog.review-created / review-updated / review-deleted -> RATED and the author's interests."""

    def __init__(self, store: GraphStore, cls: type) -> None:
        self.store = store
        self.cls = cls

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        if not (event.review_id and event.author_user_id and event.work_id):
            raise PermanentError(f"{self.cls.__name__} {msg.id} lacks review_id, author_user_id or work_id")
        if self.cls is catalog_events_pb2.ReviewDeleted:
            await self.store.remove_rating(review_id=event.review_id, user_id=event.author_user_id,
                                           work_id=event.work_id, version=event.version or 1)
            return []
        if not model.MIN_RATING <= event.rating <= model.MAX_RATING:
            raise PermanentError(f"{self.cls.__name__} {msg.id}: rating {event.rating} is off the 1-5 scale")
        when = event.create_time if self.cls is catalog_events_pb2.ReviewCreated else event.update_time
        await self.store.apply_rating(review_id=event.review_id, user_id=event.author_user_id,
                                      work_id=event.work_id, rating=event.rating,
                                      at=model.timestamp_us(when), version=event.version or 1,
                                      genre_paths=list(event.genre_slugs))
        return []


class FollowMirror:
    """graph.follow-created / follow-removed -> FOLLOWS in this worker's graph. The api-write has written
    the edge already (a no-op then); a rebuild (`culture replay graph`) gets every follow from here, and a
    switched graph the follows an older api-write committed before the roles restarted. The events'
    times order a pair's follows and unfollows (the api-write keeps them increasing per pair)."""

    def __init__(self, store: GraphStore, cls: type) -> None:
        self.store = store
        self.cls = cls

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        if not (event.follower_user_id and event.followee_user_id):
            raise PermanentError(f"{self.cls.__name__} {msg.id} lacks follower_user_id or followee_user_id")
        if self.cls is graph_events_pb2.FollowCreated:
            await self.store.apply_follow(event.follower_user_id, event.followee_user_id,
                                          model.timestamp_us(event.create_time))
        else:
            await self.store.apply_unfollow(event.follower_user_id, event.followee_user_id,
                                            model.timestamp_us(event.remove_time))
        return []
