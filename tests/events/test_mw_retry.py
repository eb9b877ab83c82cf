"""Retry: backoff schedule, max retries, the retryable predicate."""

from __future__ import annotations

import pytest

from culture_events import Message
from culture_events.errors import PermanentError, attempts
from culture_events.middleware import Retry

pytestmark = pytest.mark.unit


def test_delays_grow_are_capped_and_jittered() -> None:
    r = Retry(initial_interval=1, multiplier=3, max_interval=5, jitter=0.5)
    assert [r.delay(n, rand=lambda: 0.5) for n in (1, 2, 3, 4)] == [1, 3, 5, 5]
    assert r.delay(1, rand=lambda: 0.0) == 0.5 and r.delay(1, rand=lambda: 1.0) == 1.5


async def test_retries_then_gives_up_with_attempt_count() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    calls = 0

    async def always_fails(msg: Message) -> list[Message]:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    with pytest.raises(RuntimeError) as info:
        await Retry(max_retries=3, initial_interval=0.1, jitter=0, sleep=sleep)(always_fails)(Message())
    assert calls == 4 and attempts(info.value) == 4
    assert waits == pytest.approx([0.1, 0.2, 0.4])


async def test_succeeds_after_transient_failures() -> None:
    calls = 0

    async def flaky(msg: Message) -> list[Message]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("blip")
        return [Message(b"ok")]

    async def no_sleep(s: float) -> None: ...

    out = await Retry(max_retries=5, sleep=no_sleep)(flaky)(Message())
    assert [m.payload for m in out] == [b"ok"] and calls == 3


async def test_non_retryable_errors_fail_at_once() -> None:
    calls = 0

    async def bad(msg: Message) -> list[Message]:
        nonlocal calls
        calls += 1
        raise PermanentError("no")

    async def no_sleep(s: float) -> None: ...

    with pytest.raises(PermanentError):
        await Retry(sleep=no_sleep)(bad)(Message())
    assert calls == 1
    custom = Retry(retry_on=lambda e: isinstance(e, ConnectionError), sleep=no_sleep)
    with pytest.raises(ValueError):
        await custom(lambda m: _raise(ValueError()))(Message())


async def _raise(exc: Exception) -> list[Message]:
    raise exc
