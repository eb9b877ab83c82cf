"""Recoverer: whatever a handler does (raise anything, return garbage), the outcome is an error or a
list of messages, never something that takes the router down."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from culture_events.errors import HandlerCrashed, PermanentError
from culture_events.handling import Handler
from culture_events.message import Message

log = logging.getLogger(__name__)


def outputs_of(result: Any) -> list[Message]:
    """A handler's result as a list of messages: None -> [], one message -> [it]; anything else is a bug."""
    if result is None:
        return []
    if isinstance(result, Message):
        return [result]
    if isinstance(result, list | tuple) and all(isinstance(m, Message) for m in result):
        return list(result)
    raise PermanentError(f"a handler returned {type(result).__name__}; expected list[Message] or None")


def recoverer(next_handler: Handler) -> Handler:
    """Turn crashes (SystemExit, GeneratorExit, any BaseException but cancellation) into errors."""

    async def handle(msg: Message) -> list[Message]:
        try:
            result = await next_handler(msg)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            log.debug("handler failed on %s", msg.id, exc_info=True)
            raise
        except BaseException as exc:
            log.error("handler crashed on %s: %r", msg.id, exc, exc_info=True)
            raise HandlerCrashed(f"handler crashed: {type(exc).__name__}: {exc}") from exc
        return outputs_of(result)

    return handle
