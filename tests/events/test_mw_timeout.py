"""Timeout: a slow attempt fails with HandlerTimeout; the handler's own TimeoutError is kept."""

from __future__ import annotations

import asyncio

import pytest

from culture_events import Message
from culture_events.errors import HandlerTimeout
from culture_events.middleware import timeout

pytestmark = pytest.mark.unit


async def test_slow_handler_times_out() -> None:
    async def slow(msg: Message) -> list[Message]:
        await asyncio.sleep(5)
        return []

    with pytest.raises(HandlerTimeout, match=r"0\.05s"):
        await timeout(0.05)(slow)(Message())


async def test_fast_handler_and_own_timeout_error() -> None:
    async def fast(msg: Message) -> list[Message]:
        return [msg]

    async def own(msg: Message) -> list[Message]:
        raise TimeoutError("upstream")

    m = Message()
    assert await timeout(1)(fast)(m) == [m]
    with pytest.raises(TimeoutError, match="upstream") as info:
        await timeout(1)(own)(m)
    assert not isinstance(info.value, HandlerTimeout)
