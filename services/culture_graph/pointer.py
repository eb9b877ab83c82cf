"""Which label namespace the graph serves: the configured one, or the one a rebuild switched it to.

`culture replay graph --from earliest` rebuilds the graph from Kafka under a fresh label prefix
(CULTURE_GRAPH_LABEL_PREFIX: every label and relationship type of the graph is <prefix><name>; Neo4j
Community has one database, so the namespace is in the labels) with a consumer group of its own. When
that group has caught up it records the switch on a node `(:CultureGraphPointer {base})` (`base`: the
configured prefix, "" by default; this label is never prefixed) with `active_prefix` and
`active_consumer_group`. Every graph role reads it at start (`resolve`): a deployment switches by
restarting the graph roles (api-write, api-read, worker). The new worker goes on from the rebuild's
offsets, and it consumes FollowCreated/FollowRemoved too, so follows the old api-write committed
between the rebuild and the restart reach the new graph. Roll back by pointing the node at the old
prefix again (or deleting it) and restarting; the old graph is kept until someone deletes it.
CULTURE_GRAPH_FOLLOW_POINTER=false ignores the pointer (the rebuild's own worker uses it).
"""

from __future__ import annotations

from culture_graph.settings import GraphSettings

READ = ("MATCH (p:CultureGraphPointer {base: $base}) "
        "RETURN p.active_prefix AS prefix, p.active_consumer_group AS group")
WRITE = ("MERGE (p:CultureGraphPointer {base: $base}) "
         "SET p.active_prefix = $prefix, p.active_consumer_group = $group")


async def read_pointer(uri: str, database: str, base: str) -> tuple[str, str] | None:
    """(label prefix, consumer group) the configured prefix `base` points to, if it points anywhere."""
    from culture_events.outbox.neo4j import driver_from_uri

    driver = driver_from_uri(uri, notifications_min_severity="OFF")
    try:
        records, _, _ = await driver.execute_query(READ, base=base, database_=database)
    finally:
        await driver.close()
    if not records or records[0]["prefix"] is None:
        return None
    return str(records[0]["prefix"]), str(records[0]["group"] or "")


async def write_pointer(uri: str, database: str, base: str, prefix: str, group: str) -> None:
    from culture_events.outbox.neo4j import driver_from_uri

    driver = driver_from_uri(uri)
    try:
        await driver.execute_query(WRITE, base=base, prefix=prefix, group=group, database_=database)
    finally:
        await driver.close()


async def resolve(settings: GraphSettings, uri: str) -> GraphSettings:
    """The settings to run with: the pointer's label prefix and consumer group, when there is one."""
    if not settings.follow_pointer:
        return settings
    target = await read_pointer(uri, settings.database, settings.label_prefix)
    if target is None or target[0] == settings.label_prefix:
        return settings
    prefix, group = target
    return settings.model_copy(update={"label_prefix": prefix,
                                       "consumer_group": group or settings.consumer_group})
