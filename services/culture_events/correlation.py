"""The correlation id of the work in progress, carried by a contextvar.

Every publish, outbox write and gRPC call made while handling a message (or serving a request) reads
it from here, so it reaches everything downstream, not only a handler's direct outputs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from culture_events.message import Message, Meta

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
#: the event id of the message being handled: what caused every publish made meanwhile
causation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("causation_id", default=None)


def current() -> str | None:
    """The correlation id in effect, if any."""
    return correlation_id.get()


def current_causation() -> str | None:
    """The event id of the message being handled, if any."""
    return causation_id.get()


@contextlib.contextmanager
def bound(value: str | None, causation: str | None = None) -> Iterator[None]:
    """Run a block with the given correlation id (and, optionally, causation id) in effect."""
    token = correlation_id.set(value)
    ctoken = causation_id.set(causation) if causation is not None else None
    try:
        yield
    finally:
        if ctoken is not None:
            causation_id.reset(ctoken)
        correlation_id.reset(token)


def stamp(message: Message) -> Message:
    """Fill in the correlation and causation ids in effect, unless the message already has them.

    Every publisher calls this before sending (the backends, the outbox), so a publish made while
    handling carries the chain's ids whether it comes from a handler's outputs or from deep inside.
    """
    corr, cause = correlation_id.get(), causation_id.get()
    if corr is not None:
        message.metadata.setdefault(Meta.CORRELATION_ID, corr)
    if cause is not None:
        message.metadata.setdefault(Meta.CAUSATION_ID, cause)
    return message
