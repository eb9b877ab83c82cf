"""PoisonQueue: a message its handler cannot process (after the retries) goes to a poison topic, with
the reason recorded in its metadata, and is acked so the consumer moves on."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from culture_events import handling
from culture_events.errors import attempts
from culture_events.handling import Handler
from culture_events.message import Message
from culture_events.ports import Publisher

log = logging.getLogger(__name__)


class PoisonMeta:
    """Metadata keys a poisoned message carries besides its own."""

    REASON = "poison_reason"
    ERROR_TYPE = "poison_error_type"
    HANDLER = "poison_handler"
    TOPIC = "poison_topic"
    ATTEMPTS = "poison_attempts"
    ORIGINAL_ID = "poison_original_id"
    POISONED_AT = "poisoned_at"


def poisoned(msg: Message, exc: BaseException, handler: str, topic: str) -> Message:
    """The poison-topic copy of `msg`: same payload and metadata plus why and where it failed."""
    return Message(msg.payload, {
        **msg.metadata,
        PoisonMeta.REASON: f"{type(exc).__name__}: {exc}"[:2000],
        PoisonMeta.ERROR_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
        PoisonMeta.HANDLER: handler,
        PoisonMeta.TOPIC: topic,
        PoisonMeta.ATTEMPTS: str(attempts(exc)),
        PoisonMeta.ORIGINAL_ID: msg.id,
        PoisonMeta.POISONED_AT: dt.datetime.now(dt.UTC).isoformat(),
    })


class PoisonQueue:
    """On failure, publish the message to `topic` (one poison topic per consumer group) and ack it.

    `should_poison` decides which errors go to the poison topic; the others are re-raised (nack).
    When publishing to the poison topic itself fails, the original error is re-raised: the message is
    nacked and redelivered rather than lost.
    """

    def __init__(self, publisher: Publisher, topic: str,
                 should_poison: Callable[[BaseException], bool] = lambda exc: True) -> None:
        self.publisher = publisher
        self.topic = topic
        self.should_poison = should_poison

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            try:
                return await next_handler(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.should_poison(exc):
                    raise
                where = handling.current()
                log.warning("poisoning %s from %s (handler %s): %r", msg.id, where.topic, where.handler, exc)
                await self.publisher.publish(self.topic, poisoned(msg, exc, where.handler, where.topic))
                return []

        return handle
