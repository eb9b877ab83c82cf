"""Locks between `culture` processes: a waiter names the holder's pid, keeps reporting, is bounded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from culture_events.testing import wait_until
from culture_stack import debian, locks
from culture_stack.server import StackError

pytestmark = pytest.mark.unit

# holds the lock at argv[1] (via culture_stack.locks) until the file argv[2] exists
_HOLDER = """
import pathlib, sys, time
from culture_stack import locks
with locks.held(pathlib.Path(sys.argv[1]), "the test lock", timeout=30):
    print("holding", flush=True)
    release = pathlib.Path(sys.argv[2])
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def _start_holder(lock: Path, release: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock), str(release)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_waiter_names_the_holder_pid_and_keeps_reporting(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(locks, "NOTE_EVERY", 0.3)
    lock, release = tmp_path / "x.lock", tmp_path / "release"
    holder = _start_holder(lock, release)
    notes: list[str] = []
    got = threading.Event()

    def wait() -> None:
        with locks.held(lock, "the test lock", timeout=30, note=notes.append):
            got.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        asyncio.run(wait_until(lambda: sum("still waiting" in n for n in notes) >= 2, 10,
                               "two progress lines"))
        assert f"held by pid {holder.pid} (" in notes[0], notes
        assert notes[0].startswith("  waiting for the test lock"), notes
        assert all(f"pid {holder.pid}" in n for n in notes)
        assert not got.is_set()
    finally:
        release.touch()
        holder.wait(timeout=30)
        waiter.join(timeout=30)
    assert got.is_set()
    assert notes[-1].startswith("  got the test lock after ")


def test_the_wait_is_bounded_and_the_error_names_the_holder(tmp_path: Path) -> None:
    lock, release = tmp_path / "x.lock", tmp_path / "release"
    holder = _start_holder(lock, release)
    try:
        expected = rf"gave up waiting for the test lock .* held by pid {holder.pid}"
        with pytest.raises(StackError, match=expected), \
                locks.held(lock, "the test lock", timeout=0.5, note=lambda _: None):
            pass
    finally:
        release.touch()
        holder.wait(timeout=30)


def test_reentrant_in_one_thread_and_free_afterwards(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with locks.held(lock, "outer", timeout=1), locks.held(lock, "inner", timeout=1):
        assert locks.holder(lock).startswith("pid ")
    assert lock.read_text() == ""  # a free lock names no holder
    # and another process gets it at once
    code = ("import pathlib, sys\nfrom culture_stack import locks\n"
            "with locks.held(pathlib.Path(sys.argv[1]), 'x', timeout=2): print('ok')")
    done = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_another_thread_waits_and_is_told_so(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    notes: list[str] = []
    release = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        with locks.held(lock, "the test lock", timeout=5):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(10)
    def wait() -> None:
        with locks.held(lock, "the test lock", timeout=10, note=notes.append):
            pass

    other = threading.Thread(target=wait)
    other.start()
    asyncio.run(wait_until(lambda: bool(notes), 10, "a waiting note"))
    assert "another thread of this process" in notes[0]
    release.set()
    t.join(10)
    other.join(10)
    assert notes[-1].startswith("  got the test lock")


def test_dpkg_lock_holder_reads_the_fcntl_lock_owner(tmp_path: Path) -> None:
    """apt and dpkg lock with fcntl (not flock); we read the holder's pid to say who blocks apt."""
    lock = tmp_path / "lock-frontend"
    lock.touch()
    assert debian.dpkg_lock_holder(str(lock)) is None
    code = ("import fcntl, sys\nf = open(sys.argv[1], 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        assert debian.dpkg_lock_holder(str(lock)) == proc.pid
    finally:
        proc.communicate("", timeout=30)
    assert debian.dpkg_lock_holder(str(lock)) is None


def test_apt_waits_for_a_foreign_dpkg_lock_naming_its_holder(tmp_path: Path, monkeypatch) -> None:
    """A non-`culture` apt/dpkg (unattended-upgrades, a person's apt-get) holding dpkg's lock: we wait,
    saying who holds it, and go on when it is free; the wait is bounded."""
    lock = tmp_path / "lock-frontend"
    lock.touch()
    notes: list[str] = []
    monkeypatch.setattr(debian, "DPKG_LOCKS", (str(lock),))
    monkeypatch.setattr(debian, "say", notes.append)
    code = ("import fcntl, sys\nf = open(sys.argv[1], 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(StackError, match=rf"gave up .* {lock} by pid {proc.pid}"):
            debian.wait_for_dpkg_locks(time.monotonic() + 0.5)
        notes.clear()
        waiter = threading.Thread(target=debian.wait_for_dpkg_locks, args=(time.monotonic() + 30,))
        waiter.start()
        asyncio.run(wait_until(lambda: bool(notes), 10, "a waiting note"))
        assert "waiting for apt/dpkg's locks" in notes[0] and f"pid {proc.pid}" in notes[0], notes
        assert waiter.is_alive()
    finally:
        proc.communicate("", timeout=30)
    waiter.join(30)
    assert not waiter.is_alive()
