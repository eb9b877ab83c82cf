"""Retry: run a failing handler again with exponential backoff, for errors worth retrying."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable

from culture_events import handling
from culture_events.errors import PermanentError, RetryLater, set_attempts
from culture_events.handling import Handler
from culture_events.message import Message

log = logging.getLogger(__name__)


def retryable(exc: BaseException) -> bool:
    """The default predicate: everything but PermanentError (and its kin, e.g. UndecodablePayload)."""
    return not isinstance(exc, PermanentError)


@dataclasses.dataclass(frozen=True)
class Retry:
    """Retry a failing handler with exponential backoff: the n-th wait is
    initial_interval * multiplier**(n-1), capped at max_interval, then spread by +-jitter (a fraction).

    Limits: `max_retries` retries (None: no count limit) and, with `budget`, the time since the first
    failure: a retry whose wait would end after `budget` seconds is not made (the budget outlasts
    ordinary outages: a database or SMTP away for a minute). Errors for which `retry_on` is False
    (PermanentError, UndecodablePayload) fail at once; so does the last attempt, with its count
    (`errors.attempts`) for the poison queue.

    A handler registered with `Router.add_handler(..., retry_budget=...)` has its own budget.

    Inside a router (`handling.current().can_defer`) a wait does not sleep in the handler's lane:
    Retry raises `RetryLater`, the router parks the message's key (its later messages wait behind
    it, every other key goes on) and runs the message through the chain again when the wait is
    over; the attempts so far are remembered here, per handler and message id. Elsewhere (a chain
    called directly, tests) it sleeps in place.
    """

    max_retries: int | None = 3
    initial_interval: float = 0.1
    multiplier: float = 2.0
    max_interval: float = 10.0
    jitter: float = 0.1
    retry_on: Callable[[BaseException], bool] = retryable
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injectable so tests do not wait
    budget: float | None = None
    #: (handler, message id) -> (monotonic time of the first failure, attempts made) of deferred retries
    _deferred: dict[tuple[str, str], tuple[float, int]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False)

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        exponent = min(retry - 1, 64)  # no float overflow for long budgets
        base = min(self.max_interval, self.initial_interval * self.multiplier ** exponent)
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))

    def _horizon(self, budget: float | None) -> float:
        """How long a deferred record stays valid (a message taken back by the broker may never
        come back to this process, or only much later)."""
        return (budget or 0.0) + 2 * self.max_interval + 60.0

    def _forget_stale(self, now: float) -> None:
        """Drop the records of messages that never came back (taken back by the broker, closed)."""
        horizon = self._horizon(self.budget)
        for key, (first, _) in list(self._deferred.items()):
            if now - first > horizon:
                del self._deferred[key]

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            where = handling.current()
            record = (where.handler, msg.id)
            first, attempt = self._deferred.pop(record, (0.0, 0)) if self._deferred else (0.0, 0)
            budget = self.budget if where.retry_budget is None else where.retry_budget
            if first and time.monotonic() - first > self._horizon(budget):  # a stale record: start over
                first, attempt = 0.0, 0
            while True:
                attempt += 1
                try:
                    return await next_handler(msg)
                except Exception as exc:
                    set_attempts(exc, attempt)
                    now = time.monotonic()
                    first = first or now
                    capped = self.max_retries is not None and attempt > self.max_retries
                    if capped or not self.retry_on(exc):
                        raise
                    wait = self.delay(attempt)
                    if budget is not None and now + wait - first > budget:
                        log.warning("retry budget of %.0fs spent on %s after %d attempts: %r",
                                    budget, msg.id, attempt, exc)
                        raise
                    log.info("retry %d of %s in %.2fs after %r", attempt, msg.id, wait, exc)
                    if where.can_defer:
                        if len(self._deferred) > 10_000:
                            self._forget_stale(now)
                        self._deferred[record] = (first, attempt)
                        raise RetryLater(wait, exc, attempt) from exc
                    await self.sleep(wait)

        return handle
