"""The correlation id of the work in progress, carried by a contextvar.

Every publish, outbox write and gRPC call made while handling a message (or serving a request) reads
it from here, so it reaches everything downstream, not only a handler's direct outputs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def current() -> str | None:
    """The correlation id in effect, if any."""
    return correlation_id.get()


@contextlib.contextmanager
def bound(value: str | None) -> Iterator[None]:
    """Run a block with the given correlation id in effect."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)
