"""The graph's consumers. Every handler is idempotent and order-tolerant: versions and event times
decide, so a redelivered, replayed or out-of-order event leaves the same graph."""

from __future__ import annotations

import logging

from culture.events.v1 import catalog_events_pb2, identity_events_pb2
from culture_events.codec import decode
from culture_events.errors import PermanentError
from culture_events.message import Message
from culture_graph import model
from culture_graph.store import GraphStore

log = logging.getLogger("culture_graph")


class UserCreator:
    """identity.user-registered -> (:User)."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, identity_events_pb2.UserRegistered, max_schema_version=1)
        if not event.user_id:
            raise PermanentError(f"UserRegistered {msg.id} has no user_id")
        await self.store.upsert_user(event.user_id, model.timestamp_us(event.register_time))
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
