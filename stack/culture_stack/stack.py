"""`up`, `down`, `status`: the stack's life cycle over every selected server."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import time
from typing import Any

from culture_stack import debian, locks, process
from culture_stack.ports import HOST
from culture_stack.server import Context, Server, StackError, Status, say


def settings_file(ctx: Context):
    return ctx.state / "stack.json"


#: how long a start-up/`down` waits for another `culture` process's start-up/`down` of the same
#: state, and an install for another's install of the same server into the same cache (a cold
#: Kubernetes build on a busy machine takes about an hour)
LOCK_TIMEOUT = 2 * 3600.0


def state_lock(ctx: Context):
    """One `up`/`down` per state directory at a time (two would start the same servers twice)."""
    return locks.held(ctx.state / "run" / "stack.lock", f"the stack lock of {ctx.state}",
                      timeout=LOCK_TIMEOUT)


def _install_one(ctx: Context, server: Server) -> None:
    # processes sharing a cache install each server once: the second finds it done
    with locks.held(ctx.tool(".locks", f"install-{server.name}.lock"), f"the {server.name} install lock",
                    timeout=LOCK_TIMEOUT):
        server.install(ctx)


def install_all(ctx: Context, servers: list[Server]) -> None:
    """Install every server into the cache, a few at a time (downloads overlap with builds).

    First the Debian packages of every server, in one apt-get run, before anything runs a program.
    """
    debian.need_all(c for s in servers for c in s.commands)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {pool.submit(_install_one, ctx, s): s for s in servers}
        errors = []
        for fut in concurrent.futures.as_completed(futures):
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - report every failed install, then stop
                errors.append(f"{futures[fut].name}: {exc}")
    if errors:
        raise StackError("install failed:\n" + "\n".join(errors))


def up(ctx: Context, servers: list[Server]) -> None:
    """Start what is not running; leave running servers alone; wait until all are healthy.

    Installing runs outside the state lock (each install has its own lock), so a second `up` waits
    only for the other's start-up, not for its downloads and builds.
    """
    t0 = time.monotonic()
    say(f"stack: state in {ctx.state}, caches in {ctx.cache}")
    install_all(ctx, servers)
    say(f"stack: installed ({time.monotonic() - t0:.0f}s)")
    with state_lock(ctx):
        _start(ctx, servers, t0)


def _start(ctx: Context, servers: list[Server], t0: float) -> None:
    pending = list(servers)
    started: dict[str, int] = {}
    healthy: set[str] = set()
    while pending:
        ready = [s for s in pending if all(d in healthy or d not in {x.name for x in servers}
                                           for d in s.depends_on)]
        if not ready:
            raise StackError(f"dependency cycle or missing dependency among {[s.name for s in pending]}")
        for server in ready:
            pending.remove(server)
            pid = server.pid(ctx)
            if pid is not None:
                say(f"  {server.name}: already running (pid {pid})")
            else:
                for port in server.ports():
                    if process.port_open(port):
                        raise StackError(
                            f"{server.name} cannot start: port {HOST}:{port} is already taken by "
                            f"{process.who_listens(port)}. Stop that process or run `culture stack down`."
                        )
                server.init_data(ctx)
                launch = server.launch(ctx)
                pid = process.spawn(launch.argv, log=ctx.log(server.name), pidfile=ctx.pidfile(server.name),
                                    env=launch.env, cwd=launch.cwd)
                say(f"  {server.name}: started (pid {pid}), log {ctx.log(server.name)}")
            started[server.name] = pid
        # wait for this wave together: their start-ups overlap
        for server in ready:
            server.wait_healthy(ctx, started[server.name])
            server.after_start(ctx)
            healthy.add(server.name)
    write_settings(ctx, servers)
    say(f"stack: up ({time.monotonic() - t0:.0f}s); settings in {settings_file(ctx)}")


def write_settings(ctx: Context, servers: list[Server]) -> None:
    """Merge the servers' connection settings into `<state>/stack.json` (read by tests and services)."""
    path = settings_file(ctx)
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    for s in servers:
        current[s.name] = s.settings()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def down(ctx: Context, servers: list[Server], *, clean: bool = False) -> None:
    """Stop, in reverse start order, only the processes this stack started (by pid file)."""
    with state_lock(ctx):
        _down(ctx, servers, clean=clean)


def _down(ctx: Context, servers: list[Server], *, clean: bool = False) -> None:
    for server in reversed(servers):
        pid = server.pid(ctx)
        if pid is None:
            say(f"  {server.name}: not running")
        else:
            say(f"  {server.name}: stopping pid {pid}...")
            ok = process.stop(pid, timeout=server.stop_timeout,
                              on_wait=lambda s, n=server.name: say(f"  {n}: still stopping ({s:.0f}s)"))
            if not ok:
                raise StackError(f"{server.name} (pid {pid}) would not stop")
        ctx.pidfile(server.name).unlink(missing_ok=True)
        if clean:
            data = ctx.data(server.name)
            if data.exists():
                shutil.rmtree(data)
                say(f"  {server.name}: wiped {data}")
    if clean:
        settings_file(ctx).unlink(missing_ok=True)


def status(ctx: Context, servers: list[Server]) -> list[Status]:
    """Each server's pid, health and self-reported version, asked of the live server."""
    rows = []
    for server in servers:
        pid = server.pid(ctx)
        row = Status(name=server.name, port=server.port, pid=pid, running=pid is not None, healthy=False)
        if pid is not None:
            try:
                row.healthy = server.healthy(ctx)
            except Exception as exc:  # noqa: BLE001
                row.detail = f"health check failed: {exc}"
            if row.healthy:
                try:
                    row.version = server.version(ctx)
                except Exception as exc:  # noqa: BLE001
                    row.detail = f"version query failed: {exc}"
        rows.append(row)
    return rows
