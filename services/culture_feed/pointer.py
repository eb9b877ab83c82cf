"""Which keyspace the feed serves: the configured keyspace, or the one a rebuild switched it to.

`culture replay feed --from earliest` rebuilds the timelines from Kafka into a fresh keyspace with a
consumer group of its own, and when that group has caught up it records the switch in the
configured keyspace's `meta` table: rows `active_keyspace` and `active_consumer_group`. Every feed
role reads them at start (`resolve`), so a deployment switches by restarting the feed roles (in a
cluster: `kubectl rollout restart` of the feed worker and api-read Deployments); CULTURE_FEED_KEYSPACE
stays as it was, the pointer lives next to the data. The new worker goes on from the rebuild's
offsets (its group), so nothing published between the rebuild and the restart is missed. Roll back
by pointing the rows at the old keyspace again (or deleting them) and restarting; the old keyspace
is kept until someone drops it. CULTURE_FEED_FOLLOW_POINTER=false ignores the rows (the rebuild's own
worker uses it).
"""

from __future__ import annotations

from cassandra.cluster import Session

from culture_feed.settings import FeedSettings
from culture_runtime.cassandra import open_session

ACTIVE_KEYSPACE, ACTIVE_GROUP = "active_keyspace", "active_consumer_group"


def read_pointer(session: Session, base: str) -> tuple[str, str] | None:
    """(keyspace, consumer group) the configured keyspace `base` points to, if it points anywhere."""
    from cassandra import InvalidRequest

    if session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s "
                       "AND table_name = 'meta'", (base,)).one() is None:
        return None

    def value(name: str) -> str:
        row = session.execute(f"SELECT value FROM {base}.meta WHERE name = %s", (name,)).one()
        return str(row.value) if row is not None and row.value else ""

    try:
        keyspace = value(ACTIVE_KEYSPACE)
        return (keyspace, value(ACTIVE_GROUP)) if keyspace else None
    except InvalidRequest:
        # the table is listed but not usable yet: another role of the feed is creating it right now
        # (roles started together); a table that new holds no pointer (a rebuild writes one into a
        # keyspace that has long existed)
        return None


def write_pointer(session: Session, base: str, keyspace: str, group: str) -> None:
    """Point the configured keyspace `base` at (keyspace, group); `base` and its meta table must exist."""
    session.execute(f"INSERT INTO {base}.meta (name, value) VALUES (%s, %s)", (ACTIVE_GROUP, group))
    session.execute(f"INSERT INTO {base}.meta (name, value) VALUES (%s, %s)", (ACTIVE_KEYSPACE, keyspace))


def resolve(settings: FeedSettings, contact_points: str, port: int) -> FeedSettings:
    """The settings to run with: the pointer's keyspace and consumer group, when there is a pointer
    (blocking: call it from a thread)."""
    if not settings.follow_pointer:
        return settings
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    cluster, session = open_session(
        lambda: Cluster([p.strip() for p in contact_points.split(",") if p.strip()], port=port,
                        protocol_version=settings.protocol_version, load_balancing_policy=RoundRobinPolicy(),
                        connect_timeout=settings.connect_timeout_seconds),
        settings, "feed")
    try:
        target = read_pointer(session, settings.keyspace)
    finally:
        cluster.shutdown()
    if target is None or target[0] == settings.keyspace:
        return settings
    keyspace, group = target
    return settings.model_copy(update={"keyspace": keyspace,
                                       "consumer_group": group or settings.consumer_group})
