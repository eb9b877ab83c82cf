"""A broadcast wake-up for asyncio waiters: every `notify()` wakes everyone waiting at that moment."""

from __future__ import annotations

import asyncio
import contextlib


class Signal:
    """Waiters take the current generation's event; `notify` sets it and starts a new generation."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        """Wake every current waiter."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, at_most: float | None = None) -> None:
        """Wait for the next `notify()` (or `at_most` seconds, without error)."""
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await event.wait()
