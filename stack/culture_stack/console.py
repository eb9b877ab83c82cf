"""The stack's leaf module: its error type and its progress output, importable by every other
module of the stack (process, server, tools, ...) without an import cycle."""

from __future__ import annotations

import sys


class StackError(RuntimeError):
    """A stack step failed; the message says what and what to do about it."""


def say(message: str) -> None:
    """Progress output: one line, flushed at once so long steps are visible as they happen."""
    print(message, file=sys.stderr, flush=True)
