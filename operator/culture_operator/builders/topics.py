"""The event topics a spec asks for, and the plan for an external Kafka (create, grow, refuse)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from culture_operator.builders.names import topic_name
from culture_operator.spec import EVENT_TOPICS, CulturePlatformSpec


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
                config={**defaults.config, **(o.config if o else {})},
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
