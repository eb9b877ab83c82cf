"""The shapes shared by the router and middleware, and the context of the message being handled.

A handler maps one message to zero or more output messages (raise to fail); a middleware wraps a
handler into another handler. The router binds a `Handling` record while a handler runs, so
middleware (poison queue, metrics) knows which handler and topic it serves without extra arguments.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Awaitable, Callable

from culture_events.message import Message

Handler = Callable[[Message], Awaitable[list[Message]]]
Middleware = Callable[[Handler], Handler]


@dataclasses.dataclass(frozen=True)
class Handling:
    """Which router handler is running and which topic its message came from."""

    handler: str
    topic: str
    #: whether the caller takes a `RetryLater` (the router: it parks the key and runs the message
    #: again later) instead of a retry waiting in place
    can_defer: bool = False
    #: the handler's own retry budget in seconds (`Router.add_handler(retry_budget=...)`), else None
    retry_budget: float | None = None


_handling: contextvars.ContextVar[Handling | None] = contextvars.ContextVar("handling", default=None)


def current() -> Handling:
    """The handler in progress; outside a router, a placeholder record so middleware works in tests."""
    return _handling.get() or Handling(handler="-", topic="-")


def bind(handling: Handling) -> contextvars.Token[Handling | None]:
    """Make `handling` current (the router does this around every handler call)."""
    return _handling.set(handling)


def unbind(token: contextvars.Token[Handling | None]) -> None:
    """Undo `bind`."""
    _handling.reset(token)
