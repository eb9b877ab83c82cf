"""culture_contracts: hand-written helpers over the generated contracts in the `culture` package.

`culture_contracts.topics` maps every event message to its Kafka topic, key field and event type,
read from the `(culture.events.v1.event)` option in proto/culture/events/v1/*.proto.
"""

from culture_contracts.topics import (
    ALL_TOPICS,
    EVENTS,
    EventSpec,
    decode_event,
    event_class_for,
    event_type_of,
    key_of,
    spec_for_topic,
    spec_of,
    topic_of,
)

__all__ = [
    "ALL_TOPICS",
    "EVENTS",
    "EventSpec",
    "decode_event",
    "event_class_for",
    "event_type_of",
    "key_of",
    "spec_for_topic",
    "spec_of",
    "topic_of",
]
