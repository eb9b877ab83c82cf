"""`culture events relay`: run an outbox relay on its own (PostgreSQL, MongoDB or Neo4j outbox -> Kafka).

Examples::

    culture events relay --store postgres --dsn postgresql://culture:culture@db:5432/culture \\
        --table identity.identity_outbox --brokers kafka:9092
    culture events relay --store mongo --uri 'mongodb://mongo:27017/?replicaSet=rs0' \\
        --database catalog --collection catalog_outbox
    culture events relay --store neo4j --neo4j-uri bolt://neo4j:secret@graph-db:7687 --label GraphOutbox

Defaults come from CULTURE_POSTGRES_DSN, CULTURE_MONGO_URI, CULTURE_NEO4J_URI and CULTURE_KAFKA_BOOTSTRAP
(the variables the services read); with neither the flag nor the variable it says which is missing and
exits 2. SIGTERM or SIGINT stops it after the batch in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import textwrap


def say(message: str) -> None:
    """One progress line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `events` and its verbs to the top-level `culture` parser."""
    from culture_events import poison_cli

    p = subparsers.add_parser("events", help="event library tools (outbox relay, poison topics)",
                              description="Tools of the culture_events library.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    poison_cli.add_verbs(verbs)
    r = verbs.add_parser(
        "relay", help="publish committed outbox entries to Kafka until stopped",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Claim the entries services committed to their outbox (a PostgreSQL table, a "
            "MongoDB collection or Neo4j nodes of one label), publish them to Kafka (acks=all, "
            "idempotent producer) and delete them. "
            "Several relays may run on one outbox: each entry is published by one of them, and entries "
            "with the same partition key keep their order. Delivery is at-least-once (a relay killed "
            "after publishing, before deleting, leaves the batch to be published again).", 79),
        epilog="examples:\n"
        "  culture events relay --store postgres --table identity.identity_outbox\n"
        "  culture events relay --store mongo --database catalog --collection catalog_outbox\n"
        "  culture events relay --store neo4j --label GraphOutbox\n"
        "defaults: CULTURE_POSTGRES_DSN, CULTURE_MONGO_URI, CULTURE_NEO4J_URI, CULTURE_KAFKA_BOOTSTRAP")
    env = os.environ.get
    r.add_argument("--brokers", default=env("CULTURE_KAFKA_BOOTSTRAP"),
                   help="Kafka bootstrap servers (default: $CULTURE_KAFKA_BOOTSTRAP)")
    _store_arguments(r)
    tune = r.add_argument_group("tuning")
    tune.add_argument("--batch-size", type=int, default=500, help="entries per claim (default: 500)")
    tune.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                      help="fallback polling when no wake-up arrives (LISTEN/NOTIFY, change stream) "
                      "(default: 1.0)")
    tune.add_argument("--stall-warning", type=float, default=5.0, metavar="SECONDS",
                      help="say so when a publish waits longer than this for Kafka; the relay keeps "
                      "waiting (the idempotent producer retries without duplicates) (default: 5)")
    tune.add_argument("--no-create-schema", action="store_true",
                      help="do not create the outbox table/indexes (when migrations own them)")
    tune.add_argument("--report-every", type=float, default=10.0, metavar="SECONDS",
                      help="progress line interval while publishing (default: 10)")
    tune.add_argument("--max-attempts", type=int, default=8, metavar="N",
                      help="publishes of one entry Kafka may refuse (too large, no such "
                      "topic) before the entry is dead; a dead entry holds back only the later entries of "
                      "its key (default: 8)")
    r.set_defaults(func=_relay)

    o = verbs.add_parser(
        "outbox", help="inspect an outbox (pending, retrying and dead entries)",
        description="Inspect a service's outbox: how many entries wait, how many Kafka refused "
        "and are retried, and the dead ones (refused --max-attempts times: never published; the "
        "later entries of their key wait behind them).",
        epilog="example:\n  culture events outbox status --store postgres --table identity.identity_outbox",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ov = o.add_subparsers(dest="outbox_verb", required=True, metavar="VERB")
    st = ov.add_parser("status", help="counts of pending, retrying, leased and dead entries; the dead ones")
    _store_arguments(st)
    st.add_argument("--limit", type=int, default=50, help="dead entries to list (default: 50)")
    st.add_argument("--no-create-schema", action="store_true", help=argparse.SUPPRESS)
    st.set_defaults(func=_status, no_create_schema=True)


def _store_arguments(r: argparse.ArgumentParser) -> None:
    # the same CULTURE_* variables the services read (culture_runtime.settings.PlatformSettings; this
    # library sits below it, so it reads them itself)
    env = os.environ.get
    r.add_argument("--store", choices=["postgres", "mongo", "neo4j"], required=True,
                   help="where the outbox lives")
    pg = r.add_argument_group("postgres")
    pg.add_argument("--dsn", default=env("CULTURE_POSTGRES_DSN"),
                    help="PostgreSQL DSN (default: $CULTURE_POSTGRES_DSN)")
    pg.add_argument("--table", default="culture_outbox", help="outbox table, `table` or `schema.table` "
                    "(default: %(default)s)")
    mg = r.add_argument_group("mongo")
    mg.add_argument("--uri", default=env("CULTURE_MONGO_URI"),
                    help="MongoDB connection string (default: $CULTURE_MONGO_URI)")
    mg.add_argument("--database", default="culture", help="database of the outbox (default: %(default)s)")
    mg.add_argument("--collection", default="culture_outbox", help="outbox collection (default: %(default)s)")
    mg.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                    help="mongo and neo4j: how long a claim holds entries; must outlast a publish attempt "
                    "(default: 60)")
    n4 = r.add_argument_group("neo4j")
    n4.add_argument("--neo4j-uri", default=env("CULTURE_NEO4J_URI"),
                    help="Neo4j Bolt URI, credentials in it: bolt://user:password@host:7687 "
                    "(default: $CULTURE_NEO4J_URI)")
    n4.add_argument("--label", default="CultureOutbox", help="node label of the outbox entries "
                    "(default: %(default)s)")
    n4.add_argument("--neo4j-database", default="neo4j", help="Neo4j database (default: %(default)s)")


def _store(args: argparse.Namespace) -> object:
    if args.store == "postgres":
        from culture_events.outbox.postgres import PostgresOutbox, PostgresStore

        try:
            outbox = PostgresOutbox(args.table)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
        return PostgresStore(args.dsn, outbox, create_schema=not args.no_create_schema,
                             max_attempts=getattr(args, "max_attempts", 8))
    if args.store == "neo4j":
        from culture_events.outbox.neo4j import Neo4jStore

        try:
            return Neo4jStore(args.neo4j_uri, args.label, database=args.neo4j_database, lease=args.lease,
                              create_schema=not args.no_create_schema,
                              max_attempts=getattr(args, "max_attempts", 8))
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
    from culture_events.outbox.mongo import MongoStore

    return MongoStore(args.uri, args.database, args.collection, lease=args.lease,
                      create_schema=not args.no_create_schema, max_attempts=getattr(args, "max_attempts", 8))


async def _run(args: argparse.Namespace) -> int:
    from culture_events.backends.kafka import relay_publisher
    from culture_events.errors import EventsError
    from culture_events.outbox.relay import Relay

    relay = Relay(_store(args),  # type: ignore[arg-type]
                  lambda: relay_publisher(args.brokers, "culture-events-relay"),
                  batch_size=args.batch_size, poll_interval=args.poll_interval, report=say,
                  report_every=args.report_every, stall_warning=args.stall_warning)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (say(f"relay: {signal.Signals(s).name}, stopping"),
                                                    stop.set()))
    say(f"relay: {args.store} outbox -> Kafka {args.brokers}")
    try:
        await relay.run(stop)
    except EventsError as exc:
        say(f"error: {exc}")
        return 1
    return 0


def _relay(args: argparse.Namespace) -> int:
    needed = [("brokers", "--brokers", "CULTURE_KAFKA_BOOTSTRAP"),
              {"postgres": ("dsn", "--dsn", "CULTURE_POSTGRES_DSN"),
               "mongo": ("uri", "--uri", "CULTURE_MONGO_URI"),
               "neo4j": ("neo4j_uri", "--neo4j-uri", "CULTURE_NEO4J_URI")}[args.store]]
    missing = [f"{flag} (or ${var})" for attr, flag, var in needed if not getattr(args, attr)]
    if missing:
        say("error: missing settings: " + ", ".join(missing))
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # while Kafka is away aiokafka logs every reconnect attempt; the relay reports the stall itself
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return asyncio.run(_run(args))


async def _show_status(args: argparse.Namespace) -> int:
    from culture_events.errors import EventsError

    store = _store(args)
    try:
        await store.open()  # type: ignore[attr-defined]
        counts = getattr(store, "counts", None)
        if counts is None:
            say(f"error: `outbox status` does not support {args.store} outboxes")
            return 2
        found = await counts()
        print(f"{store.describe}")  # type: ignore[attr-defined]
        print(f"pending {found['pending']}  retrying {found['retrying']}  leased {found['leased']}  "
              f"dead {found['dead']}")
        dead = await store.dead(args.limit)  # type: ignore[attr-defined]
        if dead:
            print("dead entries (never published; the later entries of their key wait behind them):")
            for d in dead:
                print(f"  {d['ref']}  topic={d['topic']}  key={d['key']}  message_id={d['message_id']}  "
                      f"attempts={d['attempts']}  dead_at={d['dead_at']}\n    {d['last_error']}")
        return 0
    except EventsError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        await store.close()  # type: ignore[attr-defined]


def _status(args: argparse.Namespace) -> int:
    needed = {"postgres": ("dsn", "--dsn", "CULTURE_POSTGRES_DSN"),
              "mongo": ("uri", "--uri", "CULTURE_MONGO_URI"),
              "neo4j": ("neo4j_uri", "--neo4j-uri", "CULTURE_NEO4J_URI")}[args.store]
    if not getattr(args, needed[0]):
        say(f"error: missing settings: {needed[1]} (or ${needed[2]})")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_show_status(args))
