"""A role's first contact with its servers, tried again while they are starting or busy.

Roles start together with (or right after) their servers: on a busy node a server may accept the
connection and answer its first request only seconds later (a 2-core machine starting twenty
processes at once, a pod whose database is still opening its files). One timed-out first ping must
not end the role; an unreachable server for `within` seconds still does, with what was tried and why
(and the orchestrator restarts it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("culture_runtime.startup")

#: how long a role keeps trying its first contact by default
WITHIN_SECONDS = 60.0


class _Tries:
    """The deadline, the growing delay (0.2 s doubling up to 5 s) and the log lines of one first contact."""

    def __init__(self, what: str, within: float, logger: logging.Logger) -> None:
        self.what, self.log = what, logger
        self.deadline = time.monotonic() + within
        self.delay, self.count = 0.2, 0

    def failed(self, exc: BaseException) -> float:
        """How long to wait before the next try; raises `exc` once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise exc
        wait = min(self.delay, left)
        self.log.warning("%s not reachable yet (%r); trying again in %.1fs (%.0fs left)",
                         self.what, exc, wait, left)
        self.delay = min(self.delay * 2, 5.0)
        return wait

    def succeeded(self) -> None:
        if self.count > 1:
            self.log.info("%s reachable after %d tries", self.what, self.count)


async def until_reachable(what: str, attempt: Callable[[], Awaitable[T]], *,
                          transient: tuple[type[BaseException], ...], within: float = WITHIN_SECONDS,
                          logger: logging.Logger = log) -> T:
    """`await attempt()` until it returns; a `transient` error is logged and tried again with a growing
    delay for `within` seconds, then raised. Other errors are raised at once."""
    tries = _Tries(what, within, logger)
    while True:
        tries.count += 1
        try:
            result = await attempt()
        except transient as exc:
            await asyncio.sleep(tries.failed(exc))
        else:
            tries.succeeded()
            return result


def until_reachable_blocking(what: str, attempt: Callable[[], T], *,
                             transient: tuple[type[BaseException], ...], within: float = WITHIN_SECONDS,
                             logger: logging.Logger = log) -> T:
    """`until_reachable` for a blocking client (call it from a thread)."""
    tries = _Tries(what, within, logger)
    while True:
        tries.count += 1
        try:
            result = attempt()
        except transient as exc:
            time.sleep(tries.failed(exc))
        else:
            tries.succeeded()
            return result


async def ping_redis(client: Any, what: str, *, within: float = WITHIN_SECONDS) -> None:
    """PING a Redis client's server at start-up, tried again while it does not answer."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    await until_reachable(what, client.ping, within=within,
                          transient=(RedisConnectionError, RedisTimeoutError, OSError))
