"""Offset bookkeeping for one partition of a consumer group: pure code, shared by the backends.

A partition's messages are handed out concurrently. The tracker remembers which offsets are in
flight and which were acked, so the committed offset only ever moves over a contiguous run of acked
offsets, and a nack rewinds the read position to the nacked offset. When a rewind re-reads offsets
that are still in flight or already acked, `deliver` skips them: only the nacked message (and what
was never acked) is delivered again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from culture_events.message import Message


class PartitionTracker:
    """Committed offset, in-flight and acked offsets, and the rewind position of one partition."""

    __slots__ = ("acked", "committed", "in_flight", "reported", "rewind_to")

    def __init__(self, committed: int) -> None:
        #: the next offset to consume after a restart (Kafka semantics: last processed + 1)
        self.committed = committed
        #: the committed offset last handed to the broker
        self.reported = committed
        #: offset -> the message handed out (when the backend keeps it, for revoking it), else None
        self.in_flight: dict[int, Message | None] = {}
        self.acked: set[int] = set()
        #: set by a nack: the reader must seek here before reading further
        self.rewind_to: int | None = None

    def deliver(self, offset: int) -> bool:
        """A freshly read offset: True, and it is now in flight, when it must be handed out; False
        when it is committed, in flight or acked already (a rewind re-read it). One call per record:
        the Kafka fetch loop's hot path."""
        if offset < self.committed or offset in self.in_flight or offset in self.acked:
            return False
        self.in_flight[offset] = None
        return True

    def ack(self, offset: int) -> None:
        """Record an ack and move the committed offset over the contiguous acked run."""
        self.in_flight.pop(offset, None)
        if offset == self.committed:  # the usual case, acks in order: no set round trip
            self.committed += 1
            acked = self.acked
            while acked and self.committed in acked:
                acked.discard(self.committed)
                self.committed += 1
        elif offset > self.committed:
            self.acked.add(offset)

    def nack(self, offset: int) -> None:
        """Record a nack: the offset must be read again, so the reader rewinds to it."""
        self.in_flight.pop(offset, None)
        if offset >= self.committed:
            self.rewind_to = offset if self.rewind_to is None else min(self.rewind_to, offset)

    def take_rewind(self) -> int | None:
        """The offset to seek to, once (None when no nack happened since the last call)."""
        rewind, self.rewind_to = self.rewind_to, None
        return rewind

    def take_commit(self) -> int | None:
        """The new committed offset when it moved since the last call, else None."""
        if self.committed == self.reported:
            return None
        self.reported = self.committed
        return self.committed

    def commit_failed(self, offset: int, previous: int) -> None:
        """The commit of `offset` (from take_commit; `previous` was reported before it) failed: the
        next take_commit offers it again (or a later one), so no acked run is left uncommitted."""
        if self.reported == offset:
            self.reported = previous

    @property
    def busy(self) -> bool:
        """Whether messages of this partition are still in flight."""
        return bool(self.in_flight)
