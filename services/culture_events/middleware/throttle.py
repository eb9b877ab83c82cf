"""Throttle: at most `per_second` messages start per second (token spacing), across all lanes."""

from __future__ import annotations

import time
from collections.abc import Callable

from culture_events.backends._signal import Signal
from culture_events.errors import ClosedError
from culture_events.handling import Handler
from culture_events.message import Message


class Throttle:
    """Spaces handler starts 1/per_second apart. The router starts and stops it (Lifecycle): once
    stopped, waiting messages fail at once (nack -> redelivered), so shutdown never waits on it."""

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("Throttle(per_second) must be positive")
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next = 0.0
        self._stopped = False
        self._stop_signal = Signal()

    async def start(self) -> None:
        """Begin a fresh schedule (called by Router.run)."""
        self._stopped = False
        self._next = self.clock()

    async def stop(self) -> None:
        """Release every waiter with ClosedError (called by Router.close)."""
        self._stopped = True
        self._stop_signal.notify()

    async def acquire(self) -> None:
        """Wait for this message's slot."""
        if self._stopped:
            raise ClosedError("throttle stopped: the router is closing")
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._stop_signal.wait(slot - now)
            if self._stopped:
                raise ClosedError("throttle stopped: the router is closing")

    def __call__(self, next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            await self.acquire()
            return await next_handler(msg)

        return handle
