"""`culture replay feed --from earliest`: rebuild the feed's read model from Kafka into a fresh keyspace
and switch the feed to it (culture_feed.pointer); `culture replay graph --from earliest` the same for
the graph, under a fresh label prefix (culture_graph.pointer; GRAPH_DOC below).

How: the feed's own worker (`culture serve feed --role worker`, the same handlers and middleware as in
production) runs with CULTURE_FEED_KEYSPACE=<new keyspace>, a consumer group of its own committed at
the beginning of every topic the feed consumes, and CULTURE_FEED_FOLLOW_POINTER=false; when that group
has consumed everything that was published before the replay started, the configured keyspace's
pointer rows name the new keyspace and group, and the rebuild's worker stops. Restarting the feed
roles switches them (they read the pointer at start); the new worker goes on from the rebuild's
offsets. Replayed events are handled as redeliveries: the feed's item ids, its derived event ids
(FeedCreated) and the consumers' de-duplication make them change nothing twice downstream.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from culture_feed.settings import FeedSettings
from culture_runtime.settings import MissingSettings, PlatformSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("replay", help="rebuild a read model from Kafka, switch to it",
                              description="Rebuild a read model from the events in Kafka.")
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL")
    f = models.add_parser(
        "feed", help="rebuild the feed's timelines into a new Cassandra keyspace and switch to it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(__doc__.split("\n\n")[1], 79) + "\n\n" + textwrap.fill(
            "Needs the feed worker's settings: CULTURE_KAFKA_BOOTSTRAP, CULTURE_CASSANDRA_CONTACT_POINTS, "
            "CULTURE_REDIS_URL, CULTURE_FEED_GRAPH_READ, CULTURE_FEED_KEYSPACE (the configured keyspace: "
            "the pointer lives there), CULTURE_FEED_CONSUMER_GROUP, CULTURE_TOPIC_NAMESPACE.", 79),
        epilog="example:\n  culture replay feed --from earliest            # then restart the feed roles")
    f.add_argument("--keyspace", help="the new keyspace (default: <configured keyspace>_r<UTC time>)")
    _rebuild_arguments(f)
    f.set_defaults(func=_replay_feed)
    g = models.add_parser(
        "graph", help="rebuild the graph under a new label prefix and switch to it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(GRAPH_DOC, 79) + "\n\n" + textwrap.fill(
            "Needs the graph worker's settings: CULTURE_KAFKA_BOOTSTRAP, CULTURE_NEO4J_URI, "
            "CULTURE_GRAPH_LABEL_PREFIX (the configured prefix, default none: the pointer is keyed by it), "
            "CULTURE_GRAPH_CONSUMER_GROUP, CULTURE_GRAPH_DATABASE, CULTURE_TOPIC_NAMESPACE.", 79),
        epilog="example:\n  culture replay graph --from earliest   # then restart the graph roles")
    g.add_argument("--label-prefix", help="the new label prefix (default: R<UTC time>_)")
    _rebuild_arguments(g)
    g.set_defaults(func=_replay_graph)


def _rebuild_arguments(p: argparse.ArgumentParser) -> None:
    """The options every model's rebuild takes (besides where its new copy goes)."""
    p.add_argument("--from", dest="start", choices=["earliest"], required=True,
                   help="where to start reading every topic (earliest: the whole retained history)")
    p.add_argument("--within", type=float, default=3600.0, metavar="SECONDS",
                   help="give up when the rebuild has not caught up after this long (default 3600)")
    p.add_argument("--no-switch", action="store_true", help="rebuild only; leave the pointer as it is")


GRAPH_DOC = (
    "`culture replay graph --from earliest`: the graph's own worker (`culture serve graph --role "
    "worker`) runs with CULTURE_GRAPH_LABEL_PREFIX=<new prefix> (every label and relationship type of "
    "the graph is <prefix><name>: Neo4j Community has one database, so the namespace is in the labels), "
    "a consumer group of its own committed at the beginning of every topic the graph consumes "
    "(identity.user-registered, catalog work and review events, graph.follow-created/removed: the "
    "follows come from the events the api-write commits with each edge) and "
    "CULTURE_GRAPH_FOLLOW_POINTER=false; when that group has consumed everything published before the "
    "replay started, the pointer node of the configured prefix names the new prefix and group "
    "(culture_graph.pointer). Restarting the graph roles (api-write, api-read, worker) switches them; "
    "the new worker goes on from the rebuild's offsets and applies the follows the old api-write "
    "committed meanwhile.")


def _replay_graph(args: argparse.Namespace) -> int:
    from culture_graph.settings import GraphSettings

    try:
        platform = PlatformSettings().require("kafka_bootstrap", "neo4j_uri")
        settings = GraphSettings()
    except (MissingSettings, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    prefix = args.label_prefix or f"R{stamp}_"
    try:
        GraphSettings(label_prefix=prefix)
    except ValueError:
        print(f"error: --label-prefix {prefix!r}: must match [A-Za-z][A-Za-z0-9_]{{0,39}}", file=sys.stderr)
        return 2
    if prefix == settings.label_prefix:
        print(f"error: --label-prefix {prefix!r} is the configured prefix", file=sys.stderr)
        return 2
    group = f"{settings.consumer_group}-{prefix.rstrip('_').lower()}"
    env = {"CULTURE_GRAPH_LABEL_PREFIX": prefix, "CULTURE_GRAPH_CONSUMER_GROUP": group,
           "CULTURE_GRAPH_FOLLOW_POINTER": "false"}
    done = _rebuild(platform, "graph", graph_topics(platform), group, env, f"label prefix {prefix}",
                    args.within)
    if done:
        return done
    if args.no_switch:
        print(f"rebuilt under label prefix {prefix} (consumer group {group}); pointer unchanged "
              "(--no-switch)")
        return 0
    from culture_graph import pointer

    asyncio.run(pointer.write_pointer(platform.neo4j_uri or "", settings.database, settings.label_prefix,
                                      prefix, group))
    print(f"switched: label prefix {settings.label_prefix!r} now points to {prefix!r} (consumer group "
          f"{group}); restart the graph roles (api-write, api-read, worker) to serve it")
    return 0


def graph_topics(platform: PlatformSettings) -> list[str]:
    """Every topic the graph worker consumes, in the installation's namespace."""
    from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
    from culture_contracts.topics import topic_of

    classes = (identity_events_pb2.UserRegistered, catalog_events_pb2.WorkCreated,
               catalog_events_pb2.WorkUpdated, catalog_events_pb2.ReviewCreated,
               catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted,
               graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved)
    return [platform.topic(topic_of(c)) for c in classes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def feed_topics(platform: PlatformSettings) -> list[str]:
    """Every topic the feed worker consumes, in the installation's namespace."""
    from culture.events.v1 import catalog_events_pb2, graph_events_pb2, identity_events_pb2
    from culture_contracts.topics import topic_of

    classes = (identity_events_pb2.UserRegistered, catalog_events_pb2.ReviewCreated,
               catalog_events_pb2.ReviewUpdated, catalog_events_pb2.ReviewDeleted,
               graph_events_pb2.FollowCreated, graph_events_pb2.FollowRemoved,
               graph_events_pb2.InterestsGained)
    return [platform.topic(topic_of(c)) for c in classes]


async def _positions(bootstrap: str, group: str, topics: list[str]) -> tuple[dict, dict]:
    """(the end offsets now, the beginning offsets) of every partition of the existing `topics`,
    with `group` committed at the beginning (--from earliest)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        meta = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(meta.partitions_for_topic(t) or ())]
        if not tps:
            return {}, {}
        ends, begins = await consumer.end_offsets(tps), await consumer.beginning_offsets(tps)
        consumer.assign(tps)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in begins.items()})
        return ends, begins
    finally:
        await consumer.stop()


async def _behind(bootstrap: str, group: str, ends: dict) -> int:
    """How many of the messages up to `ends` `group` has not committed yet."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        left = 0
        for tp, end in ends.items():
            left += max(0, end - (await consumer.committed(tp) or 0))
        return left
    finally:
        await consumer.stop()


def _replay_feed(args: argparse.Namespace) -> int:
    try:
        platform = PlatformSettings().require("kafka_bootstrap", "cassandra_contact_points", "redis_url")
        settings = FeedSettings().require("graph_read")
    except (MissingSettings, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    keyspace = args.keyspace or f"{settings.keyspace[:32]}_r{stamp}"
    try:
        FeedSettings(keyspace=keyspace)
    except ValueError:
        print(f"error: --keyspace {keyspace!r}: must match [a-z][a-z0-9_]{{0,47}}", file=sys.stderr)
        return 2
    group = f"{settings.consumer_group}-{keyspace}"
    env = {"CULTURE_FEED_KEYSPACE": keyspace, "CULTURE_FEED_CONSUMER_GROUP": group,
           "CULTURE_FEED_FOLLOW_POINTER": "false"}
    done = _rebuild(platform, "feed", feed_topics(platform), group, env, f"keyspace {keyspace}", args.within)
    if done:
        return done
    if args.no_switch:
        print(f"rebuilt into keyspace {keyspace} (consumer group {group}); pointer unchanged (--no-switch)")
        return 0
    _switch(platform, settings, keyspace, group)
    print(f"switched: keyspace {settings.keyspace} now points to {keyspace} (consumer group {group}); "
          "restart the feed roles (worker, api-read) to serve it")
    return 0


def _rebuild(platform: PlatformSettings, service: str, topics: list[str], group: str, env: dict[str, str],
             into: str, within: float) -> int:
    """Run `service`'s worker with `env` and consumer group `group` (committed at the beginning of
    `topics`) until the group has consumed everything published before now; 0, or the exit status."""
    bootstrap = platform.kafka_bootstrap or ""
    ends, begins = asyncio.run(_positions(bootstrap, group, topics))
    total = sum(ends[tp] - begins[tp] for tp in ends)
    print(f"==> rebuilding the {service} from {len(ends)} partitions of {len(topics)} topics ({total} "
          f"events) into {into} with consumer group {group}", file=sys.stderr, flush=True)
    env = {**os.environ, **env, "CULTURE_GRPC_PORT": str(_free_port()), "PYTHONUNBUFFERED": "1"}
    culture = Path(sys.executable).with_name("culture")
    argv = [str(culture), "serve", service, "--role", "worker"] if culture.exists() else \
        [sys.executable, "-m", "culture_cli.main", "serve", service, "--role", "worker"]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"culture-replay-{service}-{group}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                print(f"error: the rebuild's {service} worker exited ({proc.returncode}); log: {log}",
                      file=sys.stderr)
                return 1
            left = asyncio.run(_behind(bootstrap, group, ends))
            if left == 0:
                break
            if time.monotonic() - started > within:
                print(f"error: {left} events still to replay after {within:.0f}s; log: {log}",
                      file=sys.stderr)
                return 1
            print(f"    {total - left}/{total} events replayed", file=sys.stderr, flush=True)
            time.sleep(1.0)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"    caught up: {total} events in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    return 0


def _switch(platform: PlatformSettings, settings: FeedSettings, keyspace: str, group: str) -> None:
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    from culture_feed import pointer as p

    points = [x.strip() for x in (platform.cassandra_contact_points or "").split(",") if x.strip()]
    cluster = Cluster(points, port=platform.cassandra_port, protocol_version=settings.protocol_version,
                      load_balancing_policy=RoundRobinPolicy())
    try:
        session = cluster.connect()
        base = settings.keyspace
        if session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s "
                           "AND table_name = 'meta'", (base,)).one() is None:
            # a feed that never ran: the configured keyspace holds only the pointer
            factor = settings.replication_factor
            session.execute(f"CREATE KEYSPACE IF NOT EXISTS {base} WITH replication = "
                            f"{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            session.execute(f"CREATE TABLE IF NOT EXISTS {base}.meta (name text PRIMARY KEY, value text)")
        p.write_pointer(session, base, keyspace, group)
    finally:
        cluster.shutdown()
