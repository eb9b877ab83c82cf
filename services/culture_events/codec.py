"""Protobuf events <-> Messages. Generic: works with any generated protobuf message class.

`encode` fills the standard metadata (event type = the proto's full name, schema version, occurred
at, event id, partition key); `decode` checks the type and parses, raising UndecodablePayload
(a PermanentError: no retry, straight to the poison topic) when it cannot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from culture_events.errors import UndecodablePayload
from culture_events.message import Message, Meta

P = TypeVar("P", bound=ProtoMessage)

CONTENT_TYPE = "content_type"
PROTOBUF = "application/x-protobuf"


def event_type(cls_or_event: type[ProtoMessage] | ProtoMessage) -> str:
    """The event type of a proto class or instance: its full name (`culture.identity.v1.UserRegistered`)."""
    return cls_or_event.DESCRIPTOR.full_name


def encode(event: ProtoMessage, *, key: str | None = None, schema_version: int = 1,
           event_id: str | None = None, occurred_at: dt.datetime | None = None,
           metadata: Mapping[str, str] | None = None) -> Message:
    """A Message carrying `event`, keyed by `key` (the aggregate id) for per-key ordering."""
    when = (occurred_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    msg = Message(event.SerializeToString(), metadata, id=event_id)
    msg.metadata.update({
        Meta.EVENT_ID: msg.id,
        Meta.EVENT_TYPE: event_type(event),
        Meta.SCHEMA_VERSION: str(schema_version),
        Meta.OCCURRED_AT: when.isoformat().replace("+00:00", "Z"),
        CONTENT_TYPE: PROTOBUF,
    })
    if key is not None:
        msg.metadata[Meta.PARTITION_KEY] = key
    return msg


def decode(msg: Message, cls: type[P], *, max_schema_version: int | None = None) -> P:
    """Parse `msg` as `cls`; UndecodablePayload when the type, version or bytes do not fit."""
    got = msg.metadata.get(Meta.EVENT_TYPE)
    if got is not None and got != event_type(cls):
        raise UndecodablePayload(f"message {msg.id} is a {got}, not a {event_type(cls)}")
    version = msg.metadata.get(Meta.SCHEMA_VERSION, "1")
    if max_schema_version is not None:
        if not version.isdigit() or int(version) > max_schema_version:
            raise UndecodablePayload(f"message {msg.id}: schema version {version} is newer than the "
                                     f"{max_schema_version} this consumer understands; upgrade it")
    event = cls()
    try:
        event.ParseFromString(msg.payload)
    except DecodeError as exc:
        raise UndecodablePayload(
            f"message {msg.id}: payload is not a valid {event_type(cls)}: {exc}") from exc
    return event


def occurred_at(msg: Message) -> dt.datetime | None:
    """The event's occurred-at time, if the message carries one."""
    raw = msg.metadata.get(Meta.OCCURRED_AT)
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


class EventTypes:
    """Decodes a message by its event_type header into whichever registered class matches."""

    def __init__(self, classes: Iterable[type[ProtoMessage]] = ()) -> None:
        self._by_name: dict[str, type[ProtoMessage]] = {}
        for cls in classes:
            self.register(cls)

    def register(self, cls: type[ProtoMessage]) -> None:
        """Make `cls` decodable by its full name."""
        self._by_name[event_type(cls)] = cls

    def decode(self, msg: Message) -> ProtoMessage:
        """The event in `msg`; UndecodablePayload when its type is missing or unknown."""
        name = msg.metadata.get(Meta.EVENT_TYPE)
        if name is None or name not in self._by_name:
            raise UndecodablePayload(f"message {msg.id}: unknown event type {name!r}; "
                                     f"known: {sorted(self._by_name)}")
        return decode(msg, self._by_name[name])
