"""Throttle: spacing of handler starts; stop releases waiters."""

from __future__ import annotations

import asyncio
import time

import pytest

from culture_events import Message
from culture_events.errors import ClosedError
from culture_events.middleware import Throttle

pytestmark = pytest.mark.unit


async def _ok(msg: Message) -> list[Message]:
    return []


async def test_rate_is_limited() -> None:
    throttle = Throttle(per_second=50)
    await throttle.start()
    handler = throttle(_ok)
    start = time.monotonic()
    await asyncio.gather(*(handler(Message()) for _ in range(11)))
    # 11 starts 20ms apart: at least 200ms
    assert time.monotonic() - start >= 0.19
    await throttle.stop()


async def test_stop_releases_waiters_with_an_error() -> None:
    throttle = Throttle(per_second=0.5)
    await throttle.start()
    handler = throttle(_ok)
    await handler(Message())  # takes the first slot
    waiting = asyncio.create_task(handler(Message()))  # would wait 2s
    await asyncio.sleep(0.01)
    await throttle.stop()
    with pytest.raises(ClosedError):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(ValueError):
        Throttle(per_second=0)
