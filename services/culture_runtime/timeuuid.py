"""Version-1 UUIDs (Cassandra `timeuuid`) as the feed's item ids and the chat's message ids, and the
time buckets of the partitions that hold them. No I/O.

`make` builds an id of a time (100-ns ticks since the UUID epoch) and 8 bytes of entropy (a hash, or
random bits). Every byte after the variant byte keeps its top bit clear, so Cassandra's order of
these ids (time, then the low 64 bits, whether compared signed or unsigned) equals `order_key`.
"""

from __future__ import annotations

import datetime as dt
import uuid

#: 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch
UUID_EPOCH = 0x01B21DD213814000


def uuid_ticks(when: dt.datetime) -> int:
    """100-ns ticks since the UUID epoch of an aware datetime."""
    if when.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return round(when.timestamp() * 1_000_000) * 10 + UUID_EPOCH


def make(ticks: int, entropy: bytes) -> uuid.UUID:
    """The timeuuid of time `ticks` whose low 64 bits come from `entropy` (its first 8 bytes)."""
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


def lowest_id(ticks: int) -> uuid.UUID:
    """The smallest id (in Cassandra's order) `make` can give for time `ticks`."""
    return make(ticks, b"\x80" + b"\x00" * 7)


def highest_id(ticks: int) -> uuid.UUID:
    """The greatest id (in Cassandra's order) `make` can give for time `ticks`."""
    return make(ticks, b"\xff" * 8)


def unix_micros(value: uuid.UUID) -> int:
    """The time of a timeuuid in microseconds since the Unix epoch."""
    return (value.time - UUID_EPOCH) // 10


def time_of(value: uuid.UUID) -> dt.datetime:
    """The time of a timeuuid as an aware datetime (microsecond precision)."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=unix_micros(value))


def order_key(value: uuid.UUID) -> tuple[int, int]:
    """Sort key equal to Cassandra's timeuuid order for the ids `make` gives."""
    return value.time, value.int & 0xFFFFFFFFFFFFFFFF


def bucket_of(value: uuid.UUID, bucket_seconds: int) -> int:
    """The time bucket (partition) of an id: whole bucket spans since the Unix epoch."""
    seconds = (value.time - UUID_EPOCH) // 10_000_000
    return seconds // bucket_seconds
