"""Fakes for middleware and handler tests: a publisher that records what it is given."""

from __future__ import annotations

import collections

from culture_events import correlation
from culture_events.errors import BackendError
from culture_events.message import Message


class RecordingPublisher:
    """Records published messages per topic (stamped like a real publisher); can be told to fail."""

    def __init__(self) -> None:
        self.published: dict[str, list[Message]] = collections.defaultdict(list)
        self.fail_with: Exception | None = None
        self.closed = False

    async def publish(self, topic: str, *messages: Message) -> None:
        """Record the messages, or raise `fail_with` when set."""
        if self.fail_with is not None:
            raise BackendError(f"fake publish to {topic} failed") from self.fail_with
        for msg in messages:
            self.published[topic].append(correlation.stamp(msg))

    async def close(self) -> None:
        """Note the close."""
        self.closed = True
