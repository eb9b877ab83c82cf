"""A broadcast wake-up for asyncio waiters: every `notify()` wakes everyone waiting at that moment."""

from __future__ import annotations

import asyncio


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Signal:
    """Each waiter waits on its own future; `notify` resolves all of them.

    A bounded wait arms one timer handle, not an `asyncio.timeout` (which costs a context manager,
    a reschedule and, on expiry, a task cancellation); `notify` with nobody waiting is a test of an
    empty list.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Wake every current waiter."""
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, at_most: float | None = None) -> None:
        """Wait for the next `notify()` (or `at_most` seconds, without error)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(max(0.0, at_most), _expire, waiter) if at_most is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:  # timed out or cancelled, not notified: forget it
                self._waiters.remove(waiter)
