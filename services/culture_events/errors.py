"""The library's errors: each says what went wrong and what to do about it."""

from __future__ import annotations

import contextlib


class EventsError(RuntimeError):
    """Base of every error raised by culture_events."""


class BackendError(EventsError):
    """A broker call failed (connection refused, topic missing...); the message names the broker."""


class PublishRejected(BackendError):
    """The broker refuses these messages themselves (too large, a topic that does not exist), so
    publishing them again cannot help; unlike an outage, which publishing waits out.

    `sent`: how many of the messages given to `publish()`, from the first, were published before
    the refused one; `all_refused`: the refusal holds for every message from `sent` on (a missing
    topic), not only for message number `sent`."""

    def __init__(self, message: str, *, sent: int = 0, all_refused: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.all_refused = all_refused


class ClosedError(EventsError):
    """The publisher, subscriber or router was used after close()."""


class PermanentError(EventsError):
    """A failure that retrying cannot fix: Retry lets it through at once, PoisonQueue takes it."""


class UndecodablePayload(PermanentError):
    """The payload cannot be decoded (wrong type, corrupt bytes, unknown schema version)."""


class RetryLater(Exception):
    """Raised by Retry inside a router: run the message again in `delay` seconds. The router parks
    the message's key meanwhile (its later messages wait behind it, other keys go on); middleware
    lets it through (PoisonQueue does not poison it, Metrics does not count it as an outcome)."""

    def __init__(self, delay: float, cause: BaseException, attempts: int) -> None:
        super().__init__(f"retry in {delay:.2f}s (attempt {attempts} failed: {cause!r})")
        self.delay = delay
        self.cause = cause
        self.attempts = attempts


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
