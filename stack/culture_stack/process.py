"""Starting, finding and stopping the stack's server processes.

Each server runs in the foreground of its own session (so it can be stopped as a group), its output
goes to `<state>/logs/NAME.log`, and its pid is kept in `<state>/run/NAME.pid`. `down` stops only
what a pid file names, and only if that process is still the one we started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from culture_stack.console import StackError, say
from culture_stack.ports import HOST


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def who_listens(port: int) -> str:
    """A human description of the process listening on a TCP port, for error messages."""
    from culture_stack import debian  # not at the top: debian -> server -> process

    ss = debian.which("ss")  # a diagnostic: it does not install anything
    if ss is None:
        return "an unknown process (`ss`, from iproute2, is not installed)"
    try:
        out = subprocess.run(
            [ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "an unknown process (ss could not tell)"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in a pid file, or None when missing or unreadable."""
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start argv detached in its own session, append its output to log, record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pid: int, *, timeout: float = 60.0, on_wait: Callable[[float], None] | None = None) -> bool:
    """SIGTERM the process group of pid, wait for it to exit, SIGKILL after timeout.

    Returns True when the process is gone.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    next_note = start + 10
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if on_wait and time.monotonic() >= next_note:
            on_wait(time.monotonic() - start)
            next_note += 10
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (avoids zombies in long runs)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def file_size(path: Path) -> int:
    """The size of a file, 0 when it does not exist (yet)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file, for error messages."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def run(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        what: str | None = None, log: Path | None = None) -> None:
    """Run a build/setup step to completion, printing what it does; raise StackError on failure.

    With `log`, output goes to that file (and its tail is shown on failure); otherwise it streams.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    say(f"  $ {what or ' '.join(argv)}")
    if log is None:
        result = subprocess.run(list(argv), cwd=cwd, env=full_env)
        if result.returncode != 0:
            raise StackError(f"command failed (exit {result.returncode}): {' '.join(argv)}")
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        result = subprocess.run(list(argv), cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise StackError(
            f"command failed (exit {result.returncode}): {' '.join(argv)}\n"
            f"--- last lines of {log} ---\n{tail(log)}"
        )
