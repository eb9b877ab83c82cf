"""Profiles in MongoDB: created from UserRegistered together with their ProfileCreated outbox entry."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from typing import Any

from google.protobuf import timestamp_pb2
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from culture.catalog.v1 import catalog_pb2
from culture.events.v1 import catalog_events_pb2, identity_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events.codec import encode
from culture_events.outbox.mongo import MongoOutbox

log = logging.getLogger("culture_catalog")

ACTIVE = "active"
_TRANSACTION_ATTEMPTS = 10
INCOMPLETE = "incomplete"


def profile_document(event: identity_events_pb2.UserRegistered, event_id: str,
                     now: dt.datetime) -> dict[str, Any]:
    """The stored profile of a newly registered user (pure)."""
    return {"_id": event.user_id, "username": event.username,
            "display_name": event.display_name or event.username, "bio": "", "favorite_genre_slugs": [],
            "avatar_url": "", "state": ACTIVE, "incomplete_reason": "", "create_time": now,
            "update_time": now, "source_event_id": event_id}


def _timestamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC))
    return ts


def profile_created(doc: dict[str, Any]) -> catalog_events_pb2.ProfileCreated:
    """The ProfileCreated event of a stored profile (pure)."""
    return catalog_events_pb2.ProfileCreated(user_id=doc["_id"], display_name=doc["display_name"],
                                             favorite_genre_slugs=doc["favorite_genre_slugs"],
                                             create_time=_timestamp(doc["create_time"]))


def to_proto(doc: dict[str, Any]) -> catalog_pb2.Profile:
    """The API's Profile of a stored profile (pure)."""
    state = (catalog_pb2.PROFILE_STATE_INCOMPLETE if doc.get("state") == INCOMPLETE
             else catalog_pb2.PROFILE_STATE_ACTIVE)
    return catalog_pb2.Profile(
        user_id=doc["_id"], username=doc.get("username", ""), display_name=doc.get("display_name", ""),
        bio=doc.get("bio", ""), favorite_genre_slugs=doc.get("favorite_genre_slugs", []),
        avatar_url=doc.get("avatar_url", ""), state=state, incomplete_reason=doc.get("incomplete_reason", ""),
        create_time=_timestamp(doc["create_time"]), update_time=_timestamp(doc["update_time"]))


class ProfileStore:
    """The profiles collection and the catalog's outbox, in one database."""

    def __init__(self, uri: str, database: str, outbox_collection: str, *,
                 created_topic: str = topic_of(catalog_events_pb2.ProfileCreated)) -> None:
        self.created_topic = created_topic
        self.client = AsyncIOMotorClient(uri, serverSelectionTimeoutMS=10000, tz_aware=True)
        self.db = self.client[database]
        self.profiles = self.db["profiles"]
        self.outbox = MongoOutbox(self.db, outbox_collection)

    async def connect(self) -> None:
        """Check the server answers and create the indexes (idempotent)."""
        await self.client.admin.command("ping")
        await self.outbox.ensure_schema()
        # creating the collection up front: collections cannot be created inside a transaction
        if "profiles" not in await self.db.list_collection_names():
            try:
                await self.db.create_collection("profiles")
            except Exception as exc:  # noqa: BLE001 - another replica created it meanwhile
                log.debug("profiles collection: %r", exc)

    async def create_from_registration(self, event: identity_events_pb2.UserRegistered,
                                       event_id: str) -> bool:
        """Create the profile and its ProfileCreated outbox entry in one transaction.

        False when the profile already exists (a redelivered event): nothing is written then, so
        ProfileCreated is emitted once per user.
        """
        if await self.profiles.find_one({"_id": event.user_id}, {"_id": 1}) is not None:
            return False
        doc = profile_document(event, event_id, dt.datetime.now(dt.UTC).replace(microsecond=0))
        created = profile_created(doc)
        for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
            try:
                async with await self.client.start_session() as session, session.start_transaction():
                    await self.profiles.insert_one(doc, session=session)
                    await self.outbox.publisher(session).publish(
                        self.created_topic, encode(created, key=key_of(created)))
                return True
            except DuplicateKeyError:
                return False  # a concurrent delivery won: it wrote the profile and the event
            except PyMongoError as exc:
                # concurrent transactions conflict (WriteConflict): the server asks for a retry
                if not exc.has_error_label("TransientTransactionError") or attempt == _TRANSACTION_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    async def get(self, user_id: str) -> dict[str, Any] | None:
        """The stored profile, if any."""
        return await self.profiles.find_one({"_id": user_id})

    def close(self) -> None:
        self.client.close()
