"""CorrelationID: the handled message's correlation id (and its id, as causation) are in effect for
the handler, so every publish made meanwhile carries them; outputs are stamped too."""

from __future__ import annotations

from culture_events import correlation
from culture_events.handling import Handler
from culture_events.message import Message, Meta


def correlation_id(next_handler: Handler) -> Handler:
    """Bind the message's correlation id (its own id when it has none: a new chain starts there)."""

    async def handle(msg: Message) -> list[Message]:
        corr = msg.metadata.get(Meta.CORRELATION_ID) or msg.id
        with correlation.bound(corr, causation=msg.id):
            outputs = await next_handler(msg)
            return [correlation.stamp(out) for out in outputs or []]

    return handle
