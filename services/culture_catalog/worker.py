"""The catalog's consumers: UserRegistered -> profile (+ ProfileCreated through the outbox)."""

from __future__ import annotations

import logging

from culture.events.v1 import identity_events_pb2
from culture_catalog.profiles import ProfileStore
from culture_events.codec import decode
from culture_events.errors import PermanentError
from culture_events.message import Message

log = logging.getLogger("culture_catalog")


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
