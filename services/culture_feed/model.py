"""The feed's pure rules: time buckets, deterministic item ids, page tokens, the read-time merge and
the admission policy. No I/O.

Item ids are version-1 UUIDs (Cassandra `timeuuid`) whose time is the activity's time and whose other
62 bits are a hash of (source event id, recipient): a redelivered event rewrites the same cells, and
a celebrity's review merged in at read time gets the id a copy would have had. Every byte after the
variant byte keeps its top bit clear, so Cassandra's order of these ids (time, then the low 64 bits)
is the same whether bytes are compared signed or unsigned, and `order_key` reproduces it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import heapq
import re
import uuid
from collections.abc import Iterable, Sequence

#: 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch
_UUID_EPOCH = 0x01B21DD213814000
DEFAULT_PAGE, MAX_PAGE = 20, 100
_TOKEN_PREFIX = "f1:"


class BadCursor(ValueError):
    """A page token this service did not issue."""


def uuid_ticks(when: dt.datetime) -> int:
    """100-ns ticks since the UUID epoch of an aware datetime."""
    micros = round(when.timestamp() * 1_000_000) if when.tzinfo else None
    if micros is None:
        raise ValueError("an aware datetime is required")
    return micros * 10 + _UUID_EPOCH


def item_id(when: dt.datetime, source_event_id: str, recipient: str) -> uuid.UUID:
    """The timeline item id of the activity of `source_event_id` in `recipient`'s timeline."""
    return _timeuuid(uuid_ticks(when), hashlib.sha256(f"{source_event_id}\x00{recipient}".encode()).digest())


def bound_id(ticks: int) -> uuid.UUID:
    """The greatest id (in Cassandra's order) any `item_id` with time `ticks` can have."""
    return _timeuuid(ticks, b"\xff" * 8)


def _timeuuid(ticks: int, entropy: bytes) -> uuid.UUID:
    if not 0 <= ticks < 1 << 60:
        raise ValueError("time out of the timeuuid range")
    time_low = ticks & 0xFFFFFFFF
    time_mid = (ticks >> 32) & 0xFFFF
    time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000  # version 1
    low = bytearray(entropy[:8])
    low[0] = 0x80 | (low[0] & 0x3F)  # RFC 4122 variant
    for i in range(1, 8):
        low[i] &= 0x7F  # see the module docstring
    high = (time_low << 32) | (time_mid << 16) | time_hi
    return uuid.UUID(int=(high << 64) | int.from_bytes(low, "big"))


def ticks_of(item: uuid.UUID) -> int:
    """The time of a timeuuid in 100-ns ticks since the UUID epoch."""
    return item.time


def time_of(item: uuid.UUID) -> dt.datetime:
    """The time of a timeuuid as an aware datetime (microsecond precision)."""
    micros = (item.time - _UUID_EPOCH) // 10
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)


def order_key(item: uuid.UUID) -> tuple[int, int]:
    """Sort key equal to Cassandra's timeuuid order for the ids of `item_id`."""
    return item.time, item.int & 0xFFFFFFFFFFFFFFFF


def bucket_of(item: uuid.UUID, bucket_seconds: int) -> int:
    """The timeline partition (time bucket) an item belongs to."""
    seconds = (item.time - _UUID_EPOCH) // 10_000_000
    return seconds // bucket_seconds


def page_size(requested: int) -> int:
    """0 (or less) -> 20; above 100 -> 100 (the contract's rule)."""
    return DEFAULT_PAGE if requested <= 0 else min(requested, MAX_PAGE)


def encode_token(last: uuid.UUID) -> str:
    """The page token after the item `last`: the next page holds the items older than it."""
    return base64.urlsafe_b64encode((_TOKEN_PREFIX + str(last)).encode()).decode().rstrip("=")


def decode_token(token: str) -> uuid.UUID | None:
    """The last item of the previous page (None for the first page); BadCursor if not ours."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not text.startswith(_TOKEN_PREFIX):
            raise ValueError
        last = uuid.UUID(text.removeprefix(_TOKEN_PREFIX))
        if last.version != 1:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadCursor("not a page token of this feed") from None
    return last


@dataclasses.dataclass(frozen=True)
class Item:
    """One timeline entry (a review activity), as stored and as served."""

    item_id: uuid.UUID
    actor_user_id: str
    review_id: str
    work_id: str = ""
    work_title: str = ""
    rating: int = 0
    excerpt: str = ""
    genre_slugs: tuple[str, ...] = ()


def merge_page(sources: Iterable[Sequence[Item]], limit: int,
               after: uuid.UUID | None = None) -> tuple[list[Item], bool]:
    """The newest `limit` distinct items of several newest-first lists that are older than `after`,
    and whether more remain. Each source must hold its `limit + 1` newest items older than `after`
    (or all it has), so the answer is exact."""
    bound = order_key(after) if after is not None else None
    seen: set[uuid.UUID] = set()
    out: list[Item] = []
    merged = heapq.merge(*[list(s) for s in sources], key=lambda i: order_key(i.item_id), reverse=True)
    for item in merged:
        if bound is not None and order_key(item.item_id) >= bound:
            continue
        if item.item_id in seen:
            continue
        seen.add(item.item_id)
        if len(out) == limit:
            return out, True
        out.append(item)
    return out, False


def refused(username: str, pattern: str) -> str | None:
    """The admission policy: why `username` gets no feed, or None when it gets one."""
    if pattern and re.fullmatch(pattern, username):
        return f"the feed admission policy refuses username {username!r} (CULTURE_FEED_REFUSED_USERNAMES)"
    return None
