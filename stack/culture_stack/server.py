"""The shape every server of the local stack has, and the shared context they run in.

A server recipe (one module under `servers/`) says how to install the server into the cache, how to
initialise its data once, which foreground command runs it, how to tell it is healthy and which
version the RUNNING server reports about itself, over its own protocol.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from culture_stack import paths, process
from culture_stack.console import StackError, say  # re-exported: most recipes import them from here
from culture_stack.ports import HOST

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running event loop
    (e.g. from an async test): then it runs on a short-lived thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a server keeps its data, logs and caches."""

    state: Path
    cache: Path

    @classmethod
    def default(cls) -> Context:
        return cls(state=paths.state_dir(), cache=paths.cache_dir())

    def data(self, name: str) -> Path:
        return self.state / "data" / name

    def conf(self, name: str) -> Path:
        return self.state / "conf" / name

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def tool(self, *parts: str) -> Path:
        return self.cache.joinpath(*parts)


@dataclasses.dataclass(frozen=True)
class Launch:
    """How to run a server in the foreground."""

    argv: list[str]
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cwd: Path | None = None


@dataclasses.dataclass
class Status:
    """What `culture stack status` prints for one server."""

    name: str
    port: int
    pid: int | None
    running: bool
    healthy: bool
    version: str = ""
    detail: str = ""


#: seconds a start-up may go on after the server last wrote to its log
LOG_GRACE = 30.0
#: a start-up that keeps logging may take at most this many times its nominal timeout
PROGRESS_CAP = 5


class Server(abc.ABC):
    """One server of the local stack."""

    #: short name used in commands (`culture stack logs NAME`), file names and the settings file
    name: str
    #: the port clients use; checked for conflicts before start
    port: int
    #: other servers that must be healthy before this one starts
    depends_on: tuple[str, ...] = ()
    #: how long start-up may take before it counts as failed
    start_timeout: float = 120.0
    #: how long a graceful stop may take before SIGKILL
    stop_timeout: float = 60.0
    #: external programs (culture_stack.debian.COMMANDS) the server runs, or makes the programs it
    #: starts run; `stack.install_all` installs their packages before any install() runs
    commands: tuple[str, ...] = ()

    def install(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Fetch or build the server into the cache (idempotent, fast when already cached).

        Nothing by default: a server that runs from this package (a Python module) has nothing to fetch.
        """

    def init_data(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Create the data directory on first start (idempotent); keep existing data."""

    @abc.abstractmethod
    def launch(self, ctx: Context) -> Launch:
        """The foreground command that runs the server."""

    @abc.abstractmethod
    def healthy(self, ctx: Context) -> bool:
        """True when the server answers its own protocol (quick: a second or two at most)."""

    @abc.abstractmethod
    def version(self, ctx: Context) -> str:
        """The version the running server reports about itself, asked over its own protocol."""

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """Connection settings for clients (written to `<state>/stack.json`)."""

    def ports(self) -> tuple[int, ...]:
        """Every port the server binds, checked for conflicts before it starts (none when `port` is 0:
        a server on a unix socket or on addresses other than 127.0.0.1)."""
        return (self.port,) if self.port else ()

    def after_start(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """One-time set-up that needs the running server (users, buckets...), idempotent."""

    # -- process bookkeeping shared by every server -------------------------------------------------

    def pid(self, ctx: Context) -> int | None:
        """The pid of the process we started, if it is still alive."""
        pid = process.read_pid(ctx.pidfile(self.name))
        return pid if pid is not None and process.pid_alive(pid) else None

    def wait_healthy(self, ctx: Context, pid: int, timeout: float | None = None) -> None:
        """Wait for health with a deadline, printing progress; on failure show the log's tail."""
        timeout = timeout or self.start_timeout
        start = time.monotonic()
        next_note = start + 15
        # A server still writing its log is still starting (Kafka loading thousands of partitions,
        # Cassandra replaying its commit log): each write moves the deadline to at least
        # LOG_GRACE seconds away, up to PROGRESS_CAP times the nominal timeout.
        deadline, cap = start + timeout, start + timeout * PROGRESS_CAP
        log_size = process.file_size(ctx.log(self.name))
        while time.monotonic() < deadline:
            if not process.pid_alive(pid):
                raise StackError(
                    f"{self.name} exited during start-up.\n"
                    f"--- last lines of {ctx.log(self.name)} ---\n{process.tail(ctx.log(self.name))}"
                )
            try:
                if self.healthy(ctx):
                    say(f"  {self.name}: healthy after {time.monotonic() - start:.0f}s")
                    return
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                pass
            size = process.file_size(ctx.log(self.name))
            if size != log_size:
                log_size = size
                deadline = min(max(deadline, time.monotonic() + LOG_GRACE), cap)
            if time.monotonic() >= next_note:
                say(f"  {self.name}: waiting for health ({time.monotonic() - start:.0f}s)...")
                next_note += 15
            time.sleep(0.5)
        why = (f"still logging at {PROGRESS_CAP}x its {timeout:.0f}s timeout" if deadline >= cap
               else f"its log quiet for the last {LOG_GRACE:.0f}s or more")
        raise StackError(
            f"{self.name} did not become healthy within {time.monotonic() - start:.0f}s on "
            f"{HOST}:{self.port} ({why}).\n"
            f"--- last lines of {ctx.log(self.name)} ---\n{process.tail(ctx.log(self.name))}"
        )
