"""Pure outbox logic shared by the stores: stamping messages at write time, choosing what to publish.

No I/O here, so the order-keeping rule is tested on its own (tests/events/test_outbox_unit.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Hashable, Iterable, Sequence

from culture_events import correlation
from culture_events.message import Message, Meta


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One stored outbox message: `ref` is the store's own id of the row/document (its order)."""

    ref: Hashable
    topic: str
    message: Message

    @property
    def key(self) -> str | None:
        return self.message.key


def now_rfc3339() -> str:
    """The current time in UTC, RFC 3339 with milliseconds (the `occurred_at` format)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prepare(message: Message) -> Message:
    """Stamp a message at WRITE time, in the caller's context (not later, in the relay's).

    Sets the correlation and causation ids in effect (culture_events.correlation), the event id (the
    message id, so consumers can deduplicate a redelivery) and `occurred_at`, unless already set.
    """
    correlation.stamp(message)
    message.metadata.setdefault(Meta.EVENT_ID, message.id)
    message.metadata.setdefault(Meta.OCCURRED_AT, now_rfc3339())
    return message


def encode_metadata(message: Message) -> str:
    """Metadata as a JSON object (what the stores keep)."""
    return json.dumps(message.metadata, separators=(",", ":"), sort_keys=True)


def decode_metadata(text: str | dict[str, str]) -> dict[str, str]:
    """The metadata read back from a store (JSON text or an already-decoded document)."""
    data = json.loads(text) if isinstance(text, str) else text
    return {str(k): str(v) for k, v in data.items()}


def publishable(claimed: Sequence[tuple[Hashable, str | None]],
                pending: Iterable[tuple[Hashable, str | None]]) -> list[Hashable]:
    """Which claimed entries may be published now without breaking the order of their key.

    `claimed`: (ref, key) of the entries this relay holds, in store order. `pending`: (ref, key) of
    every entry still in the store for those keys up to the last claimed one, in store order, held
    by anyone (this relay included). Another relay may hold an earlier entry of the same key, so
    for each key only the run of claimed entries that starts at the key's oldest pending entry is
    publishable; the rest waits for the next round. Keyless entries have no order to keep.
    """
    mine = {ref for ref, _ in claimed}
    keys = {key for _, key in claimed if key is not None}
    blocked: set[str] = set()
    allowed: set[Hashable] = set()
    for ref, key in pending:
        if key is None or key not in keys or key in blocked:
            continue
        if ref in mine:
            allowed.add(ref)
        else:  # an older entry of this key belongs to someone else: everything after it waits
            blocked.add(key)
    return [ref for ref, key in claimed if key is None or ref in allowed]


def by_topic(entries: Iterable[Entry]) -> dict[str, list[Message]]:
    """Group entries per topic, keeping store order inside each topic (hence per key)."""
    out: dict[str, list[Message]] = {}
    for entry in entries:
        out.setdefault(entry.topic, []).append(entry.message)
    return out
