"""The event registry: topic, Kafka key field and event type of every event, from the contracts.

Each event message in proto/culture/events/v1/ declares its topic and key field once, as the
`(culture.events.v1.event)` message option. This module reads those options from the generated
descriptors at import time, so no service spells a topic name by hand:

    from culture.events.v1 import identity_events_pb2
    from culture_contracts.topics import key_of, topic_of

    event = identity_events_pb2.UserRegistered(user_id=user_id, ...)
    await publisher.publish(topic_of(event), key=key_of(event), payload=event.SerializeToString())

Adding an event = adding a message with the option to a .proto file and regenerating; it is
picked up here without editing this module.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

import culture.events.v1 as _events_package
from culture.events.v1 import options_pb2


class ContractError(RuntimeError):
    """An event message's options are missing or inconsistent (a bug in the .proto files)."""


@dataclasses.dataclass(frozen=True)
class EventSpec:
    """How one event type travels on Kafka."""

    #: the generated message class, e.g. identity_events_pb2.UserRegistered
    message_class: type[Message]
    #: the full protobuf name, e.g. "culture.events.v1.UserRegistered" (the event-type header)
    event_type: str
    #: the Kafka topic, e.g. "identity.user-registered"
    topic: str
    #: the string field whose value is the Kafka key (the aggregate id), e.g. "user_id"
    key_field: str


def _spec_from(descriptor: Descriptor, message_class: type[Message]) -> EventSpec | None:
    """The spec declared on one message, or None when it is not an event (no option set)."""
    options = descriptor.GetOptions()
    if not options.HasExtension(options_pb2.event):
        return None
    declared = options.Extensions[options_pb2.event]
    if not declared.topic:
        raise ContractError(f"event {descriptor.full_name} sets (culture.events.v1.event) without a topic")
    key = descriptor.fields_by_name.get(declared.key_field)
    if key is None or key.type != FieldDescriptor.TYPE_STRING or key.is_repeated:
        raise ContractError(
            f"event {descriptor.full_name}: key_field {declared.key_field!r} "
            "must name a singular string field"
        )
    return EventSpec(message_class, descriptor.full_name, declared.topic, declared.key_field)


def _discover() -> dict[str, EventSpec]:
    """Import every generated module of culture.events.v1 and collect the events they declare."""
    specs: dict[str, EventSpec] = {}
    topics: dict[str, str] = {}
    for module_info in sorted(pkgutil.iter_modules(_events_package.__path__), key=lambda m: m.name):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{_events_package.__name__}.{module_info.name}")
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
            spec = _spec_from(descriptor, getattr(module, name))
            if spec is None:
                continue
            if spec.topic in topics:
                # One topic per event type: consumers decode by topic, so sharing one is a bug.
                raise ContractError(f"{spec.event_type} and {topics[spec.topic]} share topic {spec.topic}")
            topics[spec.topic] = spec.event_type
            specs[spec.event_type] = spec
    return specs


#: every event, by event type ("culture.events.v1.UserRegistered")
EVENTS: Mapping[str, EventSpec] = MappingProxyType(_discover())
_BY_TOPIC: Mapping[str, EventSpec] = MappingProxyType({s.topic: s for s in EVENTS.values()})
#: every event topic, sorted (for creating topics: the operator, tests, the local stack)
ALL_TOPICS: tuple[str, ...] = tuple(sorted(_BY_TOPIC))


def spec_of(event: Message | type[Message]) -> EventSpec:
    """The spec of an event message (instance or class); KeyError if it is not an event."""
    full_name = event.DESCRIPTOR.full_name
    try:
        return EVENTS[full_name]
    except KeyError:
        raise KeyError(
            f"{full_name} is not an event: only messages of culture.events.v1 that set the "
            "(culture.events.v1.event) option have a topic"
        ) from None


def topic_of(event: Message | type[Message]) -> str:
    """The Kafka topic of an event, e.g. topic_of(UserRegistered) == "identity.user-registered"."""
    return spec_of(event).topic


def event_type_of(event: Message | type[Message]) -> str:
    """The event type (the full protobuf name) to put in the message's event-type header."""
    return spec_of(event).event_type


def key_of(event: Message) -> str:
    """The Kafka key of an event: the value of its key field (the aggregate id); must be set."""
    spec = spec_of(event)
    value = getattr(event, spec.key_field)
    if not value:
        raise ValueError(f"{spec.event_type}.{spec.key_field} (the Kafka key) is empty")
    return value


def spec_for_topic(topic: str) -> EventSpec:
    """The spec of the event published to a topic; KeyError for an unknown topic."""
    try:
        return _BY_TOPIC[topic]
    except KeyError:
        known = ", ".join(ALL_TOPICS)
        raise KeyError(f"no event is published to topic {topic!r}; known topics: {known}") from None


def event_class_for(event_type: str) -> type[Message]:
    """The message class of an event type, e.g. for decoding by the event-type header."""
    try:
        return EVENTS[event_type].message_class
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENTS))}") from None


def decode_event(event_type: str, payload: bytes) -> Message:
    """Parse an event's payload bytes into its message, chosen by the event type."""
    return event_class_for(event_type).FromString(payload)
