"""Timeout: a handler attempt that runs longer than `seconds` is cancelled and fails."""

from __future__ import annotations

import asyncio

from culture_events.errors import HandlerTimeout
from culture_events.handling import Handler, Middleware
from culture_events.message import Message


def timeout(seconds: float) -> Middleware:
    """Fail an attempt with HandlerTimeout (retryable) after `seconds`."""

    def middleware(next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            limit = asyncio.timeout(seconds)
            try:
                async with limit:
                    return await next_handler(msg)
            except TimeoutError as exc:
                if limit.expired():  # ours, not a TimeoutError the handler raised itself
                    raise HandlerTimeout(f"handler did not finish within {seconds}s") from exc
                raise

        return handle

    return middleware
