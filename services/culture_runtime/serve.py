"""`culture serve SERVICE --role ROLE`: run one role of one service in this process.

A service is a package `culture_<service>` whose module `roles` has a mapping
`ROLES: dict[str, Role]`; a role is `async def role() -> None` that reads its settings from the
environment, runs until SIGTERM/SIGINT and shuts down gracefully (health NOT_SERVING first).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from culture_runtime.metrics import MetricsSettings, serve_metrics
from culture_runtime.settings import MissingSettings

Role = Callable[[], Awaitable[None]]

#: the services `culture serve` knows, in the order of ARCHITECTURE.md
SERVICES = ("identity", "catalog", "feed", "graph", "chat", "notifier", "mailer", "gateway")


def roles_of(service: str) -> dict[str, Role]:
    """The roles a service offers (empty when the service is not built yet)."""
    try:
        module = importlib.import_module(f"culture_{service}.roles")
    except ModuleNotFoundError as exc:
        if exc.name in (f"culture_{service}", f"culture_{service}.roles"):
            return {}
        raise
    return dict(module.ROLES)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` to the top-level `culture` parser."""
    p = subparsers.add_parser(
        "serve",
        help="run one role of a service (api-write, api-read, worker, relay, api)",
        description="Run one role of one service in the foreground until SIGTERM/SIGINT. Settings come "
        "from CULTURE_* environment variables; the servers' endpoints have no defaults (a role started "
        "without the ones it needs names them and exits 2; `culture dev up` passes the local stack's). "
        "With CULTURE_METRICS_PORT set, GET /metrics on that port serves the role's Prometheus metrics.",
    )
    p.add_argument("service", choices=SERVICES, help="the service")
    p.add_argument("--role", required=True, help="the role to run, e.g. api-write, api-read, worker, relay")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    roles = roles_of(args.service)
    if not roles:
        print(f"error: the {args.service} service is not part of this build yet", file=sys.stderr)
        return 2
    if args.role not in roles:
        print(f"error: {args.service} has no role {args.role!r}; its roles: {', '.join(sorted(roles))}",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve_metrics(MetricsSettings())
    except (ValidationError, OSError) as exc:
        print(f"error: {args.service} {args.role} cannot serve its metrics "
              f"(CULTURE_METRICS_HOST/CULTURE_METRICS_PORT): {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(roles[args.role]())
    except ValidationError as exc:
        print(f"error: invalid settings for {args.service} {args.role}:\n{exc}", file=sys.stderr)
        return 2
    except MissingSettings as exc:
        print(f"error: {args.service} {args.role} cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
