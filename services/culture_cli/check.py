"""`culture check consistency`: compare the write models with every read model for a scope of users."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import sys
import textwrap
import time
from pathlib import Path

from culture_cli import consistency
from culture_runtime.settings import MissingSettings, PlatformSettings

_NEEDED = ("postgres_dsn", "mongo_uri", "neo4j_uri", "cassandra_contact_points", "redis_url")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check", help="checks across the services' data (consistency)",
                              description="Checks across the services' data.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    c = verbs.add_parser(
        "consistency", help="compare the write models with every read model; exit 0 only when they agree",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Read the write models (identity's users in PostgreSQL, the catalog's reviews in MongoDB, the "
            "graph's follows in Neo4j) of a scope of users and compare them with every read model: catalog "
            "profiles, the mailer's ledger (and the SMTP spool, if given), the graph's nodes and edges, the "
            "feed's rows, mirror and timeline copies in Cassandra, the notifier's jobs in Redis. Each "
            "difference is printed as lost, duplicated or unexpected, with its ids. Exit 0 when they agree, "
            "1 when they differ, 2 on bad arguments or settings.", 79),
        epilog="settings: the services' CULTURE_* variables (CULTURE_POSTGRES_DSN, CULTURE_MONGO_URI, "
        "CULTURE_NEO4J_URI,\n  CULTURE_CASSANDRA_CONTACT_POINTS/_PORT, CULTURE_REDIS_URL, "
        "CULTURE_IDENTITY_DB_SCHEMA,\n  CULTURE_CATALOG_DATABASE, CULTURE_GRAPH_DATABASE, "
        "CULTURE_FEED_KEYSPACE); unset endpoints: the local stack's\n  (development install).\n"
        "examples:\n"
        "  culture check consistency --since 2026-12-02T17:00:00Z\n"
        "  culture check consistency --username-prefix chaos-ab12 --wait 120\n"
        "  culture check consistency --users ID1,ID2 --skip jobs --json")
    c.add_argument("--users", default="", help="comma-separated user ids to check")
    c.add_argument("--since", type=_when, help="only users registered at or after this time (ISO 8601; "
                   "naive = UTC)")
    c.add_argument("--username-prefix", default="", help="only users whose username starts with this "
                   "(a run tag)")
    c.add_argument("--skip", default="", help=f"comma-separated read models not to check "
                   f"({', '.join(consistency.MODELS)})")
    c.add_argument("--smtp-spool", type=Path, help="the SMTP sink's spool directory "
                   "(<dir>/<recipient>/*.eml): also count the mails delivered per user")
    c.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="check again until they agree or SECONDS passed (prints the time to converge)")
    c.add_argument("--json", action="store_true", help="print the differences as JSON")
    c.set_defaults(func=_consistency)


def _when(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def platform_settings() -> PlatformSettings:
    """The services' endpoints; the local stack's for the unset ones when the development tools exist."""
    platform = PlatformSettings()
    if all(getattr(platform, f) for f in _NEEDED):
        return platform
    try:  # by name: product code has no static import of the development tooling (import-linter)
        endpoints = importlib.import_module("culture_stack.endpoints")
    except ModuleNotFoundError:
        return platform.require(*_NEEDED)
    return endpoints.platform_settings()  # type: ignore[no-any-return]


def _consistency(args: argparse.Namespace) -> int:
    from culture_cli.consistency_io import Scope, Sources, gather

    skip = {m.strip() for m in args.skip.split(",") if m.strip()}
    unknown = skip - set(consistency.MODELS)
    if unknown:
        print(f"error: --skip: unknown read models {sorted(unknown)}; known: {', '.join(consistency.MODELS)}",
              file=sys.stderr)
        return 2
    models = [m for m in consistency.MODELS if m not in skip]
    users = tuple(u.strip() for u in args.users.split(",") if u.strip())
    scope = Scope(users, args.since, args.username_prefix)
    try:
        sources = Sources.from_env(platform_settings(), args.smtp_spool)
    except (MissingSettings, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"checking {scope.describe()} (identity schema {sources.identity_schema}, catalog database "
          f"{sources.catalog_database}, graph database {sources.graph_database}, feed keyspace "
          f"{sources.feed_keyspace})", file=sys.stderr, flush=True)
    started = time.monotonic()
    while True:
        try:
            write, read = asyncio.run(gather(sources, scope, models))
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - a server away or refusing: say which, no traceback
            print(f"error: reading the models failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        differences = consistency.compare(write, read)
        waited = time.monotonic() - started
        if not differences or waited >= args.wait:
            break
        print(f"  {len(differences)} differences after {waited:.1f}s; checking again", file=sys.stderr,
              flush=True)
        time.sleep(min(2.0, max(0.1, args.wait - waited)))
    if args.json:
        print(json.dumps({"users": len(write.users), "reviews": len(write.reviews),
                          "follows": len(write.follows),
                          "models": models, "summary": consistency.summary(differences),
                          "seconds": round(waited, 2),
                          "differences": [d.__dict__ for d in differences]}, indent=2))
    else:
        print(consistency.report(write, differences, models))
        if args.wait:
            print(("converged" if not differences else "not converged") + f" after {waited:.1f}s")
    return 0 if not differences else 1
