"""Locks between `culture` processes (and the threads of one): flock on a file that names its holder.

Every lock the stack takes goes through `held`: the holder writes its pid and command line into the
lock file, and a process that has to wait says what it waits for and who holds it, then keeps saying
so (every `NOTE_EVERY` seconds, with the time waited) until it gets the lock or its bound is hit.

Within one process the same lock is re-entrant for the thread holding it, and other threads wait
for it like another process would (flock alone would let two open file descriptions of one process
block each other, or, re-opened by the same thread, deadlock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from culture_stack.server import StackError, say

#: seconds between two "still waiting" lines
NOTE_EVERY = 15.0
#: how often a waiter tries again
POLL = 0.2

_registry_guard = threading.Lock()
_in_process: dict[str, threading.RLock] = {}
_depth: dict[str, int] = {}
_files: dict[str, int] = {}


def _rlock(key: str) -> threading.RLock:
    with _registry_guard:
        return _in_process.setdefault(key, threading.RLock())


def describe_pid(pid: int) -> str:
    """`pid N (command line)`, the command line shortened; just `pid N` when it cannot be read."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    if len(cmd) > 100:
        cmd = cmd[:97] + "..."
    return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"


def holder(path: Path) -> str:
    """Who holds the lock at path, as its file records it ("pid 123 (culture stack up)")."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        first = ""
    if first.isdigit():
        return describe_pid(int(first))
    return "a process that has not written its pid yet"


def _wait_loop(try_once: Callable[[], bool], what: str, who: Callable[[], str], timeout: float,
               note: Callable[[str], None]) -> float:
    """Call try_once until it returns True; report the wait; raise StackError after timeout.

    Returns the seconds waited (0 when the first try succeeded).
    """
    if try_once():
        return 0.0
    start = time.monotonic()
    note(f"  waiting for {what}, held by {who()} (up to {timeout:.0f}s)...")
    next_note = start + NOTE_EVERY
    while True:
        time.sleep(POLL)
        if try_once():
            waited = time.monotonic() - start
            note(f"  got {what} after {waited:.0f}s")
            return waited
        now = time.monotonic()
        if now - start >= timeout:
            raise StackError(f"gave up waiting for {what} after {now - start:.0f}s; it is held by {who()}")
        if now >= next_note:
            note(f"  still waiting for {what}, held by {who()} ({now - start:.0f}s)")
            next_note += NOTE_EVERY


@contextlib.contextmanager
def held(path: Path, what: str, *, timeout: float, note: Callable[[str], None] = say) -> Iterator[None]:
    """Hold the exclusive lock at path (created if needed) for the `with` body.

    `what` names it in messages ("the apt lock"); `timeout` bounds the wait in seconds.
    """
    key = os.path.abspath(path)
    rlock = _rlock(key)
    me = threading.current_thread()

    def other_thread() -> str:
        return f"another thread of this process (pid {os.getpid()})"

    _wait_loop(lambda: rlock.acquire(blocking=False), what, other_thread, timeout, note)
    try:
        if _depth.get(key, 0) == 0:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                def try_flock() -> bool:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        return False
                    return True

                _wait_loop(try_flock, what, lambda: holder(Path(path)), timeout, note)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n{me.name}\n".encode(), 0)
            except BaseException:
                os.close(fd)
                raise
            _files[key] = fd
        _depth[key] = _depth.get(key, 0) + 1
        try:
            yield
        finally:
            _depth[key] -= 1
            if _depth[key] == 0:
                fd = _files.pop(key)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # a free lock names no holder
                os.close(fd)  # closing releases the flock
    finally:
        rlock.release()
