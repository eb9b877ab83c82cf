"""`culture stack ...`: the command-line face of the local stack."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

from culture_stack import registry, stack
from culture_stack.server import Context, StackError, Status


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `stack` and its verbs to the top-level `culture` parser."""
    p = subparsers.add_parser(
        "stack",
        help="run the local stack of real servers (PostgreSQL, Redis, Kafka, Cassandra, Neo4j, "
        "a MongoDB-compatible server, a Kubernetes control plane) on 127.0.0.1",
        description="Manage the local stack. State lives in $CULTURE_STATE_DIR "
        "(default ~/.local/state/culture-platform), downloads and builds in $CULTURE_CACHE_DIR "
        "(default ~/.cache/culture-platform).",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("up", help="install what is missing and start what is not running")
    up.add_argument("servers", nargs="*", help="only these servers (and what they depend on)")
    up.add_argument("--clean", action="store_true", help="stop and wipe the data first")
    up.set_defaults(func=_up)
    down = verbs.add_parser("down", help="stop the servers this stack started (by pid)")
    down.add_argument("servers", nargs="*", help="only these servers")
    down.add_argument("--clean", action="store_true", help="also wipe their data")
    down.set_defaults(func=_down)
    st = verbs.add_parser("status", help="per server: self-reported version, port, pid, health")
    st.add_argument("servers", nargs="*")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)
    logs = verbs.add_parser("logs", help="show a server's log")
    logs.add_argument("name")
    logs.add_argument("-n", "--lines", type=int, default=60)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=_logs)
    inst = verbs.add_parser("install", help="only fetch/build the servers into the cache")
    inst.add_argument("servers", nargs="*")
    inst.set_defaults(func=_install)
    pk = verbs.add_parser(
        "packages", help="the Debian packages the stack and the cluster install, one a line",
        description="Print the Debian packages `culture stack` and `culture cluster` install (from "
        "culture_stack.debian.COMMANDS, the one list the code installs from), or install them.")
    pk.add_argument("--purgeable", action="store_true",
                    help="only those the fresh-machine check removes (not the README's requirements, "
                    "not packages the base system depends on)")
    pk.add_argument("--verbose", action="store_true", help="also the programs each package provides, and why")
    pk.add_argument("--with-owners", action="store_true",
                    help="also the installed packages holding the programs (postgresql-15 behind postgresql)")
    pk.add_argument("--install", nargs="*", metavar="PROGRAM",
                    help="install the packages of these programs (of all programs when none is named), "
                    "waiting for other apt users")
    pk.set_defaults(func=_packages)


def _up(args: argparse.Namespace) -> int:
    ctx = Context.default()
    servers = registry.select(args.servers)
    if args.clean:
        stack.down(ctx, servers, clean=True)
    stack.up(ctx, servers)
    return 0


def _down(args: argparse.Namespace) -> int:
    # stop exactly what was named: a server others depend on keeps running
    stack.down(Context.default(), registry.select(args.servers, with_dependencies=False), clean=args.clean)
    return 0


def _install(args: argparse.Namespace) -> int:
    stack.install_all(Context.default(), registry.select(args.servers))
    return 0


def _packages(args: argparse.Namespace) -> int:
    from culture_stack import debian

    if args.install is not None:
        names = args.install or list(debian.COMMANDS)
        unknown = [n for n in names if n not in debian.COMMANDS]
        if unknown:
            raise StackError(f"unknown program(s) {unknown}; known: {sorted(debian.COMMANDS)}")
        debian.need_all(names)
        for name in names:
            print(f"{name}: {debian.which(name)}")
        return 0
    pkgs = debian.packages(purgeable=args.purgeable)
    if args.with_owners:
        pkgs = sorted({*pkgs, *debian.owners(purgeable=args.purgeable)})
    for package in pkgs:
        if args.verbose:
            progs = {c: d for c, d in debian.COMMANDS.items() if d.package == package}
            print(f"{package}: " + "; ".join(f"{c} ({d.why})" for c, d in progs.items()))
        else:
            print(package)
    return 0


def _status(args: argparse.Namespace) -> int:
    return print_status(stack.status(Context.default(), registry.select(args.servers)),
                        as_json=args.json, heading="SERVER", width=24)


def print_status(rows: list[Status], *, as_json: bool, heading: str, width: int) -> int:
    """Print status rows as a table (or JSON); exit code 0 only when every row is healthy."""
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    else:
        print(f"{heading:<{width}} {'STATE':<10} {'PORT':>6} {'PID':>8}  VERSION / DETAIL")
        for r in rows:
            state = "healthy" if r.healthy else ("unhealthy" if r.running else "stopped")
            detail = r.version or r.detail
            print(f"{r.name:<{width}} {state:<10} {r.port or '-':>6} {r.pid or '-':>8}  {detail}")
    return 0 if all(r.healthy for r in rows) else 1


def _logs(args: argparse.Namespace) -> int:
    ctx = Context.default()
    log = ctx.log(args.name)
    if not log.exists():
        raise StackError(f"no log for {args.name!r} at {log}")
    cmd = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(log)]
    return subprocess.call(cmd, stdout=sys.stdout)
