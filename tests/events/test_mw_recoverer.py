"""Recoverer: crashes become errors, results become lists."""

from __future__ import annotations

import pytest

from culture_events import Message
from culture_events.errors import HandlerCrashed, PermanentError
from culture_events.middleware import recoverer

pytestmark = pytest.mark.unit


async def test_crash_becomes_error_and_exceptions_pass_unchanged() -> None:
    async def exits(msg: Message) -> list[Message]:
        raise SystemExit(1)

    async def fails(msg: Message) -> list[Message]:
        raise KeyError("k")

    with pytest.raises(HandlerCrashed, match="SystemExit"):
        await recoverer(exits)(Message())
    with pytest.raises(KeyError):
        await recoverer(fails)(Message())


async def test_results_are_normalised() -> None:
    one = Message(b"1")

    async def returns(value):
        async def h(msg: Message):
            return value
        return await recoverer(h)(Message())

    assert await returns(None) == []
    assert await returns(one) == [one]
    assert await returns((one,)) == [one]
    with pytest.raises(PermanentError, match="returned str"):
        await returns("oops")
