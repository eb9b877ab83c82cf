"""The catalog's consumers: UserRegistered -> profile (+ ProfileCreated through the outbox);
FeedCreationFailed -> MarkProfileIncomplete (+ ProfileMarkedIncomplete through the outbox); the
catalog's own work/review events -> invalidate the cached work (the second, event-driven delete)."""

from __future__ import annotations

import logging

from culture.events.v1 import catalog_events_pb2, feed_events_pb2, identity_events_pb2
from culture_catalog.cache import WorkCache
from culture_catalog.profiles import ProfileStore
from culture_catalog.store import CatalogStore
from culture_events.codec import decode
from culture_events.errors import PermanentError
from culture_events.message import Message

log = logging.getLogger("culture_catalog")

#: the catalog's events that change what GetWork shows
INVALIDATING = (
    catalog_events_pb2.WorkUpdated,
    catalog_events_pb2.ReviewCreated,
    catalog_events_pb2.ReviewUpdated,
    catalog_events_pb2.ReviewDeleted,
)


class ProfileCreator:
    """Creates the profile of a newly registered user (idempotent; no direct outputs: the outbox)."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, identity_events_pb2.UserRegistered, max_schema_version=1)
        if not event.user_id:
            raise PermanentError(f"UserRegistered {msg.id} has no user_id")
        if await self.store.create_from_registration(event, msg.id):
            log.info("profile of %s created", event.user_id)
        else:
            log.info("profile of %s already exists; event %s is a duplicate", event.user_id, msg.id)
        return []


class MarkProfileIncomplete:
    """The registration saga's compensation: the feed could not be created, so the profile is flagged
    incomplete and ProfileMarkedIncomplete is emitted (once, however often the failure arrives)."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, feed_events_pb2.FeedCreationFailed)
        if not event.user_id:
            raise PermanentError(f"FeedCreationFailed {msg.id} has no user_id")
        reason = event.reason or "the feed could not be created"
        marked = await self.store.mark_incomplete(event.user_id, "feed.timeline", reason)
        if marked is None:
            # the profile is created from UserRegistered, which may still be on its way: retry
            raise RuntimeError(f"no profile of {event.user_id} yet to mark incomplete")
        log.info("profile of %s %s incomplete", event.user_id, "marked" if marked else "was already")
        return []


class CacheInvalidator:
    """Deletes the cached work an event changed."""

    def __init__(self, cache: WorkCache, cls: type) -> None:
        self.cache = cache
        self.cls = cls

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        if event.work_id:
            await self.cache.invalidate(event.work_id)
        return []
