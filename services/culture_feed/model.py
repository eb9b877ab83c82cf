"""The feed's pure rules: time buckets, deterministic item ids, page tokens, the read-time merge and
the admission policy. No I/O.

Item ids are version-1 UUIDs (Cassandra `timeuuid`) whose time is the activity's time and whose other
62 bits are a hash of (source event id, recipient): a redelivered event rewrites the same cells, and
a celebrity's review merged in at read time gets the id a copy would have had. The id layout, its
order (`order_key`) and the time buckets are culture_runtime.timeuuid's (shared with the chat).
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

from culture_runtime import timeuuid
from culture_runtime.timeuuid import bucket_of as bucket_of
from culture_runtime.timeuuid import order_key as order_key
from culture_runtime.timeuuid import time_of as time_of
from culture_runtime.timeuuid import unix_micros as unix_micros
from culture_runtime.timeuuid import uuid_ticks as uuid_ticks

DEFAULT_PAGE, MAX_PAGE = 20, 100
_TOKEN_PREFIX = "f1:"


class BadCursor(ValueError):
    """A page token this service did not issue."""


def item_id(when: dt.datetime, source_event_id: str, recipient: str) -> uuid.UUID:
    """The timeline item id of the activity of `source_event_id` in `recipient`'s timeline."""
    entropy = hashlib.sha256(f"{source_event_id}\x00{recipient}".encode()).digest()
    return timeuuid.make(uuid_ticks(when), entropy)


#: the greatest id (in Cassandra's order) any `item_id` with time `ticks` can have
bound_id = timeuuid.highest_id


def ticks_of(item: uuid.UUID) -> int:
    """The time of a timeuuid in 100-ns ticks since the UUID epoch."""
    return item.time


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
