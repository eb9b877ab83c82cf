"""The graph's pure rules (no I/O): edge keys, cursors, page sizes, interest weights, similarity and
recommendation scores. store.py runs the Cypher; the formulas live here, once, and are unit-tested.

Ratings are the catalog's: 1 (worst) to 5 (best) whole stars, 4 and above counts as "liked".

**Interest weight** of a user in a genre (the INTERESTED_IN edge), from the user's ratings of works
in that genre (a work is in a genre and in each of its ancestors: "fiction/sf" -> "fiction"):

    weight(g) = sum(d_i * (r_i - 3) / 2) / (sum(d_i) + 1)      d_i = 0.5 ** (age_i / 180 days)

a time-decayed mean of how far each rating is above neutral (3), scaled to [-1, 1], shrunk towards
0 by a prior of one neutral rating (one 5-star rating gives 0.5, many give nearly 1). `age_i` is
measured from the user's most recent rating, not from the wall clock, so replaying the same events
always yields the same weights. A user has an INTERESTED_IN edge exactly for genres with weight > 0.

**Similarity** of two users (SimilarTastes, Recommend) over the works both rated:

    similarity(u, v) = mean over co-rated works of (1 - |r_u - r_v| / 4)

in [0, 1], 1 = identical ratings on every co-rated work; ties order by more co-rated works first.

**Recommendation score** of a work: people 1 to 3 follows away from the user (at most
`recommend_max_people`, the closest first) who rated it at least `min_rating`, each contributing

    contribution(v) = (1 + similarity(u, v)) * r_v / 5 / hops(u, v)

(similarity 0 for people with no co-rated work); score = the sum. Works the user rated are excluded.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence

from google.protobuf import timestamp_pb2

MIN_RATING, MAX_RATING, NEUTRAL_RATING = 1, 5, 3
#: "liked": the default min_rating of FriendsWhoLiked and Recommend
LIKED = 4
HALF_LIFE_DAYS = 180.0
_DAY_US = 86_400 * 1_000_000
#: separates the parts of an edge key; ids may not hold control characters, so it cannot occur in them
SEP = "\x1f"
_AFTER_SEP = "\x20"

# page sizes: (default for 0, maximum), as the contract says
FOLLOWS_PAGE = (50, 500)
FRIENDS_PAGE = (20, 100)
SIMILAR_PAGE = (20, 100)
RECOMMEND_PAGE = (20, 100)
INTERESTED_PAGE = (500, 5000)


def page_size(requested: int, sizes: tuple[int, int]) -> int:
    """0 (or less) -> the default; above the maximum -> the maximum."""
    default, maximum = sizes
    return default if requested <= 0 else min(requested, maximum)


# -- times ----------------------------------------------------------------------------------------

def now_us() -> int:
    """The current time in epoch microseconds (how the graph stores times)."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


def timestamp_us(ts: timestamp_pb2.Timestamp) -> int:
    """A protobuf Timestamp in epoch microseconds."""
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def to_timestamp(us: int | None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if us:
        ts.seconds, ts.nanos = int(us) // 1_000_000, (int(us) % 1_000_000) * 1000
    return ts


# -- follow edges --------------------------------------------------------------------------------

def pair_key(follower: str, followee: str) -> str:
    """The unique key of the FOLLOWS edge follower -> followee."""
    return f"{follower}{SEP}{followee}"


def in_key(follower: str, followee: str, at_us: int) -> str:
    """The followee's list key: followers of one user sort by follow time, then follower id."""
    return f"{followee}{SEP}{at_us:017d}{SEP}{follower}"


def out_key(follower: str, followee: str, at_us: int) -> str:
    """The follower's list key: the users one follows sort by follow time, then followee id."""
    return f"{follower}{SEP}{at_us:017d}{SEP}{followee}"


def key_range(user_id: str) -> tuple[str, str]:
    """(low, high), exclusive: every in_key/out_key of `user_id` sorts strictly between them."""
    return f"{user_id}{SEP}", f"{user_id}{_AFTER_SEP}"


# -- cursors -------------------------------------------------------------------------------------

class BadCursor(ValueError):
    """A page token that is malformed or belongs to another query."""


def encode_cursor(kind: str, scope: Sequence[object], position: object) -> str:
    """An opaque page token: the position, bound to the query it continues (kind + scope)."""
    raw = json.dumps({"k": kind, "s": list(scope), "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, kind: str, scope: Sequence[object]) -> object:
    """The position of a page token; BadCursor unless it came from the same query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("not a page token of this list") from exc
    if not isinstance(data, dict) or data.get("k") != kind or data.get("s") != list(scope):
        raise BadCursor("this page token belongs to another list or other filters")
    return data.get("p")


def key_position(token: str, kind: str, scope: Sequence[object], user_id: str) -> str | None:
    """The last edge key of a follow list's page (None for the first page)."""
    if not token:
        return None
    pos = decode_cursor(token, kind, scope)
    low, high = key_range(user_id)
    if not isinstance(pos, str) or not low < pos < high:
        raise BadCursor("this page token belongs to another user")
    return pos


def offset_position(token: str, kind: str, scope: Sequence[object]) -> int:
    """The offset of a ranked list's page (0 for the first page)."""
    if not token:
        return 0
    pos = decode_cursor(token, kind, scope)
    if not isinstance(pos, int) or isinstance(pos, bool) or pos < 0:
        raise BadCursor("not a page token of this list")
    return pos


# -- genres --------------------------------------------------------------------------------------

def genre_closure(paths: Iterable[str]) -> list[dict[str, str | None]]:
    """Each genre path and its ancestors, parents first: [{slug, name, parent}] for "a/b/c" ->
    a (no parent), a/b (parent a), a/b/c (parent a/b)."""
    out: dict[str, dict[str, str | None]] = {}
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            slug = "/".join(parts[:i])
            out.setdefault(slug, {"slug": slug, "name": parts[i - 1],
                                  "parent": "/".join(parts[: i - 1]) or None})
    return list(out.values())


# -- interests, similarity, scores -----------------------------------------------------------------

def decay(age_us: int) -> float:
    """The weight of a rating `age_us` older than the user's most recent one (half-life 180 days)."""
    return 0.5 ** (max(age_us, 0) / (HALF_LIFE_DAYS * _DAY_US))


def interest_weights(ratings: Iterable[tuple[str, int, int]]) -> dict[str, float]:
    """{genre: weight > 0} from (genre, rating, at_us) rows, one per rated work and genre of it."""
    rows = list(ratings)
    if not rows:
        return {}
    newest = max(at for _, _, at in rows)
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    for genre, rating, at in rows:
        d = decay(newest - at)
        num[genre] = num.get(genre, 0.0) + d * (rating - NEUTRAL_RATING) / (MAX_RATING - NEUTRAL_RATING)
        den[genre] = den.get(genre, 0.0) + d
    weights = {g: round(num[g] / (den[g] + 1.0), 6) for g in num}
    return {g: w for g, w in sorted(weights.items()) if w > 0}


def agreement(mine: int, theirs: int) -> float:
    """How alike two ratings of one work are: 1 equal, 0 opposite ends of the scale."""
    return 1.0 - abs(mine - theirs) / (MAX_RATING - MIN_RATING)


def similarity(pairs: Iterable[tuple[int, int]]) -> float:
    """Mean agreement over the (my rating, their rating) pairs of co-rated works (0 if none)."""
    values = [agreement(a, b) for a, b in pairs]
    return sum(values) / len(values) if values else 0.0


def contribution(sim: float, rating: int, hops: int) -> float:
    """What one person's rating adds to a work's recommendation score."""
    return (1.0 + sim) * rating / MAX_RATING / hops
