"""The chat's pure rules: conversation ids, message ids, time buckets, page cursors, unread counts.
No I/O.

- A one-to-one conversation's id derives from the sorted pair ("d-" + 32 hex digits), so both users
  find the same conversation without a lookup; a group's id is "g-" + 32 hex digits, derived from
  the creator and the client's request id when one is given (a retried creation finds the group).
- Message ids are version-1 UUIDs (Cassandra `timeuuid`): time of acceptance + random bits, issued
  strictly increasing within a process (layout and order: culture_runtime.timeuuid, shared with the
  feed).
- Messages live in ((conversation_id, bucket), message_id DESC) partitions; a bucket is a fixed span
  of time (10 days by default, as Discord's) so a busy conversation's partitions stay small.
- A History page token is "c1:<bucket>:<message id>" in URL-safe base64: where the next (older)
  page starts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import random
import re
import secrets
import threading
import time
import uuid

from culture_runtime import timeuuid
from culture_runtime.timeuuid import bucket_of as bucket_of
from culture_runtime.timeuuid import highest_id as highest_id
from culture_runtime.timeuuid import lowest_id as lowest_id
from culture_runtime.timeuuid import order_key as order_key
from culture_runtime.timeuuid import time_of as time_of
from culture_runtime.timeuuid import uuid_ticks as uuid_ticks

DEFAULT_HISTORY, MAX_HISTORY = 50, 200
DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS = 50, 200
MAX_GROUP_MEMBERS = 50
#: unread counts stop here; clients show "99+" above 99
UNREAD_CAP = 100
_TOKEN_PREFIX = "c1:"
_CONVERSATION = re.compile(r"^[dg]-[0-9a-f]{32}$")


class BadCursor(ValueError):
    """A page token or message id this service did not issue."""


def direct_id(a: str, b: str) -> str:
    """The one-to-one conversation of two users (the same in both directions)."""
    low, high = sorted((a, b))
    return "d-" + hashlib.sha256(f"{low}\x00{high}".encode()).hexdigest()[:32]


def group_id(creator: str, client_request_id: str = "") -> str:
    """A new group's id: derived from (creator, client request id) when given, else random."""
    if not client_request_id:
        return "g-" + secrets.token_hex(16)
    return "g-" + hashlib.sha256(f"group\x00{creator}\x00{client_request_id}".encode()).hexdigest()[:32]


def is_conversation_id(value: str) -> bool:
    """Whether `value` has the shape of a conversation id (existence is another matter)."""
    return bool(_CONVERSATION.match(value))


def is_direct(conversation_id: str) -> bool:
    return conversation_id.startswith("d-")


class MessageIds:
    """Issues message ids, strictly increasing in time within this process (two sends of one
    process never share a tick, so their order is the order they were accepted). The random bits
    come from a generator seeded once from the OS (ids need to be unique, not secret; a system call
    per id cost ~0.5 ms on a loaded machine)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()
        self._random = random.Random(secrets.token_bytes(32))

    def next(self, now_ns: int | None = None) -> uuid.UUID:
        ticks = (time.time_ns() if now_ns is None else now_ns) // 100 + timeuuid.UUID_EPOCH
        with self._lock:
            ticks = max(ticks, self._last + 1)
            self._last = ticks
        return timeuuid.make(ticks, self._random.getrandbits(64).to_bytes(8, "big"))


def parse_message_id(value: str) -> uuid.UUID:
    """A message id from its text; BadCursor when it is not a version-1 UUID."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError):
        raise BadCursor("not a message id") from None
    if parsed.version != 1:
        raise BadCursor("not a message id")
    return parsed


def bucket_at(when: dt.datetime, bucket_seconds: int) -> int:
    return int(when.timestamp()) // bucket_seconds


def encode_token(bucket: int, last: uuid.UUID) -> str:
    """The page token of the page after `last` (in `bucket`)."""
    raw = f"{_TOKEN_PREFIX}{bucket}:{last}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, uuid.UUID] | None:
    """(bucket, last message id) of a page token; None for an empty one; BadCursor otherwise."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("not a page token of this conversation") from None
    if not raw.startswith(_TOKEN_PREFIX):
        raise BadCursor("not a page token of this conversation")
    bucket, _, last = raw[len(_TOKEN_PREFIX):].partition(":")
    if not bucket.lstrip("-").isdigit():
        raise BadCursor("not a page token of this conversation")
    return int(bucket), parse_message_id(last)


_LIST_PREFIX = "l1:"


def encode_list_token(activity: tuple[int, int], conversation_id: str) -> str:
    """The ListConversations page token after a conversation with this activity key."""
    raw = f"{_LIST_PREFIX}{activity[0]}:{activity[1]}:{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_list_token(token: str) -> tuple[tuple[int, int], str] | None:
    """(activity key, conversation id) of a ListConversations page token; None for an empty one."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("not a page token of this list") from None
    parts = raw.removeprefix(_LIST_PREFIX).split(":", 2)
    if not raw.startswith(_LIST_PREFIX) or len(parts) != 3 or not all(p.isdigit() for p in parts[:2]) \
            or not is_conversation_id(parts[2]):
        raise BadCursor("not a page token of this list")
    return (int(parts[0]), int(parts[1])), parts[2]


def history_limit(requested: int) -> int:
    """0 -> the default; above the maximum -> the maximum."""
    return DEFAULT_HISTORY if requested <= 0 else min(requested, MAX_HISTORY)


def conversations_limit(requested: int) -> int:
    return DEFAULT_CONVERSATIONS if requested <= 0 else min(requested, MAX_CONVERSATIONS)


def unread(senders_after_mark: list[str], reader: str) -> int:
    """Messages from others among those after the read mark, capped at UNREAD_CAP."""
    return min(sum(1 for s in senders_after_mark if s != reader), UNREAD_CAP)


def members_of(creator: str, others: list[str]) -> list[str]:
    """The creator first, then the others in their order, without repeats."""
    out = [creator]
    for user in others:
        if user not in out:
            out.append(user)
    return out
