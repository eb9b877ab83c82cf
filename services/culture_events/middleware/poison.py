"""PoisonQueue: a message its handler cannot process (after the retries) goes to a poison topic, with
the reason recorded in its metadata, and is acked so the consumer moves on."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from culture_events import handling
from culture_events.errors import RetryLater, attempts
from culture_events.handling import Handler
from culture_events.message import Message
from culture_events.ports import Publisher

log = logging.getLogger(__name__)


class PoisonMeta:
    """Metadata keys a poisoned message carries besides its own."""

    REASON = "poison_reason"
    ERROR_TYPE = "poison_error_type"
    HANDLER = "poison_handler"
    #: the topic the message was consumed from (its replay goes back there)
    TOPIC = "poison_topic"
    PARTITION = "poison_partition"
    OFFSET = "poison_offset"
    ATTEMPTS = "poison_attempts"
    ORIGINAL_ID = "poison_original_id"
    POISONED_AT = "poisoned_at"

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every key the poison queue adds."""
        return frozenset(v for k, v in vars(cls).items() if k.isupper())


def poisoned(msg: Message, exc: BaseException, handler: str, topic: str) -> Message:
    """The poison-topic copy of `msg`: the same id (so a replay is deduplicated by it), payload and
    metadata, plus why it failed and where it was read (topic, partition, offset)."""
    origin = msg.origin()
    where = {PoisonMeta.TOPIC: origin.get("topic") or topic}
    if "partition" in origin:
        where[PoisonMeta.PARTITION] = origin["partition"]
    if "offset" in origin:
        where[PoisonMeta.OFFSET] = origin["offset"]
    return Message(msg.payload, {
        **msg.metadata,
        PoisonMeta.REASON: f"{type(exc).__name__}: {exc}"[:2000],
        PoisonMeta.ERROR_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
        PoisonMeta.HANDLER: handler,
        **where,
        PoisonMeta.ATTEMPTS: str(attempts(exc)),
        PoisonMeta.ORIGINAL_ID: msg.id,
        PoisonMeta.POISONED_AT: dt.datetime.now(dt.UTC).isoformat(),
    }, id=msg.id)


def restored(record: Message) -> tuple[str, Message]:
    """A poison record's original message (same id, payload and metadata without the poison keys)
    and the topic to replay it to. ValueError when the record does not say where it came from."""
    topic = record.metadata.get(PoisonMeta.TOPIC, "")
    if not topic or topic == "-":
        raise ValueError(f"poison record {record.id} does not name its source topic")
    original = record.metadata.get(PoisonMeta.ORIGINAL_ID) or record.id
    keep = PoisonMeta.keys()
    return topic, Message(record.payload, {k: v for k, v in record.metadata.items() if k not in keep},
                          id=original)


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
            except (asyncio.CancelledError, RetryLater):
                raise
            except Exception as exc:
                if not self.should_poison(exc):
                    raise
                where = handling.current()
                log.warning("poisoning %s from %s (handler %s): %r", msg.id, where.topic, where.handler, exc)
                await self.publisher.publish(self.topic, poisoned(msg, exc, where.handler, where.topic))
                return []

        return handle
