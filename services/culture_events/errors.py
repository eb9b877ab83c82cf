"""The library's errors: each says what went wrong and what to do about it."""

from __future__ import annotations

import contextlib


class EventsError(RuntimeError):
    """Base of every error raised by culture_events."""


class BackendError(EventsError):
    """A broker call failed (connection refused, topic missing...); the message names the broker."""


class ClosedError(EventsError):
    """The publisher, subscriber or router was used after close()."""


class PermanentError(EventsError):
    """A failure that retrying cannot fix: Retry lets it through at once, PoisonQueue takes it."""


class UndecodablePayload(PermanentError):
    """The payload cannot be decoded (wrong type, corrupt bytes, unknown schema version)."""


class HandlerCrashed(EventsError):
    """A handler raised something that is not an Exception (e.g. SystemExit); Recoverer wraps it."""


class HandlerTimeout(EventsError, TimeoutError):
    """A handler did not finish within the Timeout middleware's limit."""


def attempts(exc: BaseException) -> int:
    """How many times the handler ran before failing with `exc` (set by Retry; 1 without it)."""
    return int(getattr(exc, "_culture_attempts", 1))


def set_attempts(exc: BaseException, count: int) -> None:
    """Record on `exc` how many attempts were made (read back by PoisonQueue and Metrics)."""
    with contextlib.suppress(AttributeError):  # exceptions with __slots__ cannot carry it
        exc._culture_attempts = count  # type: ignore[attr-defined]
