"""The message: an id, string metadata and opaque payload bytes, acked or nacked exactly once."""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable, Mapping


class Meta:
    """Standard metadata keys every event carries (Kafka headers, Redis stream fields)."""

    EVENT_ID = "event_id"
    EVENT_TYPE = "event_type"
    CORRELATION_ID = "correlation_id"
    CAUSATION_ID = "causation_id"
    OCCURRED_AT = "occurred_at"  # RFC 3339, UTC
    SCHEMA_VERSION = "schema_version"
    #: messages with the same partition key keep their order (Kafka message key, router lanes)
    PARTITION_KEY = "partition_key"


class Settlement(enum.Enum):
    PENDING = "pending"
    ACKED = "acked"
    NACKED = "nacked"


def NOT_STARTED() -> None:
    """`Message.on_revoke` of a message waiting to be handled (in a router's lane, or parked for a
    retry): revoking it just nacks it."""


class Message:
    """One message. `ack()` and `nack()` are idempotent and exclude each other.

    A subscriber hands a message out and awaits `settled()` to learn what the handler decided:
    ack -> the backend commits past it; nack -> the backend redelivers it.
    """

    __slots__ = ("_callbacks", "_settled", "_state", "id", "metadata", "on_revoke", "payload")

    def __init__(self, payload: bytes = b"", metadata: Mapping[str, str] | None = None,
                 id: str | None = None) -> None:
        self.id: str = id or str(uuid.uuid4())
        self.metadata: dict[str, str] = dict(metadata or {})
        self.payload: bytes = payload
        self._state = Settlement.PENDING
        self._settled: asyncio.Event | None = None
        self._callbacks: list[Callable[[Settlement], None]] | None = None
        #: set by whoever handles the message (the router) to cancel that handling: see revoke()
        self.on_revoke: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, metadata={self.metadata!r}, payload={len(self.payload)} bytes)"

    @property
    def key(self) -> str | None:
        """The partition key, if any."""
        return self.metadata.get(Meta.PARTITION_KEY)

    @property
    def state(self) -> Settlement:
        return self._state

    def ack(self) -> bool:
        """Mark as processed. True when acked (now or before); False when it was already nacked."""
        return self._settle(Settlement.ACKED)

    def nack(self) -> bool:
        """Ask for redelivery. True when nacked (now or before); False when it was already acked."""
        return self._settle(Settlement.NACKED)

    def _settle(self, to: Settlement) -> bool:
        if self._state is Settlement.PENDING:
            self._state = to
            if self._settled is not None:
                self._settled.set()
            for callback in self._callbacks or ():
                callback(to)
            self._callbacks = None
            return True
        return self._state is to

    def on_settled(self, callback: Callable[[Settlement], None]) -> None:
        """Call `callback(state)` once, synchronously, when the message is acked or nacked.

        Backends use it to learn a settlement without a task per message; a callback must not block.
        Called at once when the message is already settled.
        """
        if self._state is Settlement.PENDING:
            self._callbacks = [*(self._callbacks or ()), callback]
        else:
            callback(self._state)

    def revoke(self, *, running: bool = True) -> bool:
        """The backend takes the message back (its partition goes to another consumer).

        A message waiting to be handled (`on_revoke` is NOT_STARTED) is nacked; one being handled
        has its handling cancelled through `on_revoke` (when `running`; the cancelled handler nacks
        it). True when it was taken back; False when settled already or nobody said how (a plain
        consumer iterating the subscription itself: the backend can only wait for it)."""
        hook = self.on_revoke
        if self._state is not Settlement.PENDING or hook is None:
            return False
        if hook is NOT_STARTED:
            self.nack()
            return True
        if running:
            hook()
            return True
        return False

    async def settled(self) -> Settlement:
        """Wait until the message is acked or nacked; returns which."""
        if self._state is Settlement.PENDING:
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()
        return self._state

    def origin(self) -> dict[str, str]:
        """Where the backend read this message: {"topic", "partition", "offset"} as far as it knows
        ({} for a message not read from a broker). Computed on demand: never on the hot path."""
        return {}

    def copy(self) -> Message:
        """A fresh, unsettled message with the same id, metadata and payload (for redelivery/republish)."""
        return Message(self.payload, self.metadata, id=self.id)
