"""The event topics a spec asks for, and the plan for an external Kafka (create, grow, refuse)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from culture_operator.builders.names import topic_name
from culture_operator.spec import EVENT_TOPICS, CulturePlatformSpec

#: The topics the read models are built from (feed: users, reviews, follows; graph: users, works,
#: reviews; the catalog's profiles: users). A read model is rebuilt by replaying them from the start
#: (`culture replay feed --from earliest`), so they keep every event: `retention.ms: -1` (and no size
#: limit). Not compaction: compaction keeps only the newest record of a key, and these topics are keyed
#: by aggregate (`graph.follow-created` by follower), so a follower's earlier follows would vanish.
#: The events are small (a user, a review, a follow: well under 1 KiB each), so keeping them is cheap
#: next to the read models themselves. A topicOverride's config still wins (an explicit choice).
READ_MODEL_SOURCES: dict[str, dict[str, str]] = {
    event: {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
    for event in ("identity.user-registered", "catalog.review-created", "catalog.review-updated",
                  "catalog.review-deleted", "catalog.work-created", "catalog.work-updated",
                  "graph.follow-created", "graph.follow-removed")
}


@dataclasses.dataclass(frozen=True)
class TopicWanted:
    """One Kafka topic as the spec asks for it."""

    event: str
    name: str
    partitions: int
    replicas: int
    config: dict[str, str]


def wanted_topics(spec: CulturePlatformSpec) -> list[TopicWanted]:
    """Every event topic with its partitions, replicas and config (defaults, then overrides)."""
    out = []
    defaults = spec.kafka.topics
    for event in EVENT_TOPICS:
        o = spec.kafka.topicOverrides.get(event)
        out.append(
            TopicWanted(
                event=event,
                name=topic_name(spec, event),
                partitions=(o.partitions if o and o.partitions else defaults.partitions),
                replicas=(o.replicas if o and o.replicas else defaults.replicas),
                config={**defaults.config, **READ_MODEL_SOURCES.get(event, {}), **(o.config if o else {})},
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    """What to do on an external Kafka: create, grow; and what is refused (never shrink silently)."""

    create: list[TopicWanted]
    grow: dict[str, int]  # topic -> new partition count
    refused: dict[str, tuple[int, int]]  # topic -> (existing, asked)

    @property
    def empty(self) -> bool:
        """Nothing to create or grow."""
        return not self.create and not self.grow


def plan_topics(wanted: list[TopicWanted], existing: Mapping[str, int]) -> TopicPlan:
    """Compare the wanted topics with the existing partition counts (topic -> partitions)."""
    create, grow, refused = [], {}, {}
    for t in wanted:
        have = existing.get(t.name)
        if have is None:
            create.append(t)
        elif t.partitions > have:
            grow[t.name] = t.partitions
        elif t.partitions < have:
            refused[t.name] = (have, t.partitions)
    return TopicPlan(create=create, grow=grow, refused=refused)
