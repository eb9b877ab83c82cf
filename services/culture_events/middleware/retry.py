"""Retry: run a failing handler again with exponential backoff, for errors worth retrying."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable

from culture_events.errors import PermanentError, set_attempts
from culture_events.handling import Handler
from culture_events.message import Message

log = logging.getLogger(__name__)


def retryable(exc: BaseException) -> bool:
    """The default predicate: everything but PermanentError (and its kin, e.g. UndecodablePayload)."""
    return not isinstance(exc, PermanentError)


@dataclasses.dataclass(frozen=True)
class Retry:
    """Retry up to `max_retries` times; the n-th wait is initial_interval * multiplier**(n-1), capped at
    max_interval, then spread by +-jitter (a fraction). Errors for which `retry_on` is False fail at once.
    """

    max_retries: int = 3
    initial_interval: float = 0.1
    multiplier: float = 2.0
    max_interval: float = 10.0
    jitter: float = 0.1
    retry_on: Callable[[BaseException], bool] = retryable
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injectable so tests do not wait

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        base = min(self.max_interval, self.initial_interval * self.multiplier ** (retry - 1))
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            attempt = 1
            while True:
                try:
                    return await next_handler(msg)
                except Exception as exc:
                    set_attempts(exc, attempt)
                    if attempt > self.max_retries or not self.retry_on(exc):
                        raise
                    wait = self.delay(attempt)
                    log.info("retry %d/%d of %s in %.2fs after %r",
                             attempt, self.max_retries, msg.id, wait, exc)
                    await self.sleep(wait)
                    attempt += 1

        return handle
