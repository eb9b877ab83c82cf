"""Works and reviews as MongoDB documents, and back; search tokens, genre ancestors, cursors and
the events the catalog emits. Pure: no I/O.

A work document (collection `works`, one for books and films: a common core plus `attrs`, the
polymorphic pattern)::

    {_id, schema_version: 1, kind: "book"|"film", title, original_title, description, release_year,
     language, genre_paths: [primary first], genre_ancestors: [every prefix of every path],
     tags: [slugs], tag_names: {slug: display name}, cover_url, creator_user_id, version,
     create_time, update_time, attrs: {authors, isbn, page_count, publisher} | {directors, cast,
     runtime_minutes, countries}, search_tokens: [folded words + their prefixes],
     rating: {count, sum, hist: {"1": n, ..., "5": n}}}
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import timestamp_pb2

from culture.catalog.v1 import catalog_pb2
from culture.events.v1 import catalog_events_pb2

SCHEMA_VERSION = 1
KINDS = {catalog_pb2.WORK_KIND_BOOK: "book", catalog_pb2.WORK_KIND_FILM: "film"}
KIND_ENUM = {v: k for k, v in KINDS.items()}
MIN_PREFIX = 2
EXCERPT = 280
_WORD = re.compile(r"\w+", re.UNICODE)


def empty_rating() -> dict[str, Any]:
    return {"count": 0, "sum": 0, "hist": {str(i): 0 for i in range(1, 6)}}


# -- text --------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def search_tokens(texts: Iterable[str]) -> list[str]:
    """Every folded word and its prefixes of at least MIN_PREFIX characters, deduplicated."""
    out: dict[str, None] = {}
    for text in texts:
        for word in words(text):
            out[word] = None
            for n in range(MIN_PREFIX, len(word)):
                out[word[:n]] = None
    return list(out)


def query_tokens(query: str) -> list[str]:
    """The tokens a query must all match: its folded words (a word also matches as a prefix)."""
    return list(dict.fromkeys(w for w in words(query) if len(w) >= MIN_PREFIX or w.isdigit()))


def most_selective(tokens: Sequence[str]) -> str:
    """The query token likely to match the fewest works: the longest."""
    return max(tokens, key=len)


def matches(doc: dict[str, Any], query: dict[str, Any], tokens: Sequence[str]) -> bool:
    """Whether a work has every token and passes the equality/$in/$all filters of `query` (the
    filters SearchWorks builds: kind, genre_ancestors, tags)."""
    have = set(doc.get("search_tokens", ()))
    if not all(t in have for t in tokens):
        return False
    for field, want in query.items():
        value = doc.get(field)
        values = set(value) if isinstance(value, list) else {value}
        if isinstance(want, dict):
            if "$in" in want and not values & set(want["$in"]):
                return False
            if "$all" in want and not set(want["$all"]) <= values:
                return False
        elif want not in values:
            return False
    return True


def rank(doc: dict[str, Any], tokens: Sequence[str]) -> float:
    """Score of a matching work: whole words beat prefixes, title beats people; popularity breaks ties."""
    title = set(words(doc.get("title", "")) + words(doc.get("original_title", "")))
    attrs = doc.get("attrs", {})
    people = set(words(" ".join(attrs.get("authors", []) + attrs.get("directors", []))))
    score = 0.0
    for t in tokens:
        if t in title:
            score += 3
        elif t in people:
            score += 2
        elif any(w.startswith(t) for w in title):
            score += 1.5
        else:
            score += 1
    if tokens and " ".join(tokens) in " ".join(words(doc.get("title", ""))):
        score += 2  # the query as a phrase of the title
    count = doc.get("rating", {}).get("count", 0)
    return score + min(count, 1000) / 10000


# -- genres ------------------------------------------------------------------------------------------


def ancestors(paths: Iterable[str]) -> list[str]:
    """Every path and each of its ancestors: "a/b/c" -> "a", "a/b", "a/b/c"."""
    out: dict[str, None] = {}
    for path in paths:
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            out["/".join(parts[:n])] = None
    return list(out)


def _title_of_slug(slug: str) -> str:
    return slug.replace("-", " ").capitalize()


def genres_of(paths: Sequence[str]) -> list[catalog_pb2.Genre]:
    out = []
    for path in paths:
        parent, _, slug = path.rpartition("/")
        out.append(catalog_pb2.Genre(slug=path, display_name=_title_of_slug(slug), parent_slug=parent))
    return out


# -- time --------------------------------------------------------------------------------------------


def now() -> dt.datetime:
    """Now, at millisecond precision (what MongoDB stores)."""
    t = dt.datetime.now(dt.UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def timestamp(when: dt.datetime | None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if when is not None:
        ts.FromDatetime(when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC))
    return ts


# -- works -------------------------------------------------------------------------------------------


def attrs_of(work: catalog_pb2.Work) -> dict[str, Any]:
    if work.WhichOneof("details") == "book":
        b = work.book
        return {
            "authors": list(b.authors),
            "isbn": b.isbn.replace("-", ""),
            "page_count": b.page_count,
            "publisher": b.publisher,
        }
    f = work.film
    return {
        "directors": list(f.directors),
        "cast": list(f.cast),
        "runtime_minutes": f.runtime_minutes,
        "countries": list(f.countries),
    }


def derived(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields computed from others: genre ancestors and search tokens."""
    attrs = doc["attrs"]
    texts = [
        doc["title"],
        doc.get("original_title", ""),
        *attrs.get("authors", []),
        *attrs.get("directors", []),
    ]
    return {"genre_ancestors": ancestors(doc["genre_paths"]), "search_tokens": search_tokens(texts)}


def work_document(work: catalog_pb2.Work, work_id: str, creator: str, when: dt.datetime) -> dict[str, Any]:
    """The stored document of a new work (validated before)."""
    doc: dict[str, Any] = {
        "_id": work_id,
        "schema_version": SCHEMA_VERSION,
        "kind": work.WhichOneof("details"),
        "title": work.title.strip(),
        "original_title": work.original_title,
        "description": work.description,
        "release_year": work.release_year,
        "language": work.language,
        "genre_paths": list(dict.fromkeys(work.genre_paths)),
        "tags": list(dict.fromkeys(t.slug for t in work.tags)),
        "tag_names": {t.slug: t.display_name or t.slug for t in work.tags},
        "cover_url": work.cover_url,
        "creator_user_id": creator,
        "version": 1,
        "create_time": when,
        "update_time": when,
        "attrs": attrs_of(work),
        "rating": empty_rating(),
    }
    doc.update(derived(doc))
    return doc


#: update-mask paths -> how each is applied to the stored document
WORK_FIELDS = (
    "title",
    "original_title",
    "description",
    "release_year",
    "language",
    "genre_paths",
    "tags",
    "cover_url",
    "book",
    "film",
)


def apply_work_update(
    doc: dict[str, Any], work: catalog_pb2.Work, fields: set[str], when: dt.datetime
) -> dict[str, Any]:
    """The `$set` of an update: the named fields from `work`, the derived fields, version + 1."""
    new = dict(doc)
    for name in ("title", "original_title", "description", "release_year", "language", "cover_url"):
        if name in fields:
            new[name] = getattr(work, name)
    if "genre_paths" in fields:
        new["genre_paths"] = list(dict.fromkeys(work.genre_paths))
    if "tags" in fields:
        new["tags"] = list(dict.fromkeys(t.slug for t in work.tags))
        new["tag_names"] = {t.slug: t.display_name or t.slug for t in work.tags}
    details = {f.split(".")[0] for f in fields} & {"book", "film"}
    if details:
        sub = {f.split(".", 1)[1] for f in fields if "." in f and f.split(".")[0] in details}
        fresh = attrs_of(work)
        if sub:
            attrs = dict(new["attrs"])
            for key in sub:
                attrs[{"isbn": "isbn"}.get(key, key)] = fresh.get(key, attrs.get(key))
            new["attrs"] = attrs
        else:
            new["attrs"] = fresh
    new.update(derived(new))
    changes = {k: v for k, v in new.items() if k not in ("_id", "rating", "version", "create_time")}
    changes["update_time"] = when
    changes["version"] = doc["version"] + 1
    return changes


def rating_summary(rating: dict[str, Any]) -> catalog_pb2.RatingSummary:
    count, total = int(rating.get("count", 0)), int(rating.get("sum", 0))
    hist = rating.get("hist", {})
    return catalog_pb2.RatingSummary(
        count=count,
        sum=total,
        average=round(total / count, 3) if count else 0.0,
        histogram=[int(hist.get(str(i), 0)) for i in range(1, 6)],
    )


def work_to_proto(doc: dict[str, Any]) -> catalog_pb2.Work:
    attrs = doc.get("attrs", {})
    work = catalog_pb2.Work(
        work_id=doc["_id"],
        title=doc["title"],
        original_title=doc.get("original_title", ""),
        description=doc.get("description", ""),
        release_year=doc.get("release_year", 0),
        language=doc.get("language", ""),
        genres=genres_of(doc.get("genre_paths", [])),
        tags=[
            catalog_pb2.Tag(slug=t, display_name=doc.get("tag_names", {}).get(t, t))
            for t in doc.get("tags", [])
        ],
        creator_user_id=doc.get("creator_user_id", ""),
        create_time=timestamp(doc.get("create_time")),
        update_time=timestamp(doc.get("update_time")),
        rating=rating_summary(doc.get("rating", {})),
        version=doc.get("version", 1),
        genre_paths=doc.get("genre_paths", []),
        cover_url=doc.get("cover_url", ""),
        kind=KIND_ENUM.get(doc.get("kind", ""), catalog_pb2.WORK_KIND_UNSPECIFIED),
    )
    if doc.get("kind") == "book":
        work.book.CopyFrom(
            catalog_pb2.BookDetails(
                authors=attrs.get("authors", []),
                isbn=attrs.get("isbn", ""),
                page_count=attrs.get("page_count", 0),
                publisher=attrs.get("publisher", ""),
            )
        )
    elif doc.get("kind") == "film":
        work.film.CopyFrom(
            catalog_pb2.FilmDetails(
                directors=attrs.get("directors", []),
                cast=attrs.get("cast", []),
                runtime_minutes=attrs.get("runtime_minutes", 0),
                countries=attrs.get("countries", []),
            )
        )
    return work


def _work_event_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields WorkCreated and WorkUpdated share: the whole state a consumer mirrors."""
    return {"work_id": doc["_id"], "kind": doc["kind"], "title": doc["title"],
            "genre_paths": doc["genre_paths"], "tag_slugs": doc["tags"], "release_year": doc["release_year"],
            "creator_user_id": doc["creator_user_id"], "version": doc["version"]}


def work_created(doc: dict[str, Any]) -> catalog_events_pb2.WorkCreated:
    return catalog_events_pb2.WorkCreated(**_work_event_fields(doc),
                                          create_time=timestamp(doc["create_time"]))


def work_updated(doc: dict[str, Any]) -> catalog_events_pb2.WorkUpdated:
    return catalog_events_pb2.WorkUpdated(**_work_event_fields(doc),
                                          update_time=timestamp(doc["update_time"]))


# -- reviews -----------------------------------------------------------------------------------------


def review_document(
    review_id: str,
    work: dict[str, Any],
    author: str,
    rating: int,
    title: str,
    body: str,
    request_id: str,
    when: dt.datetime,
) -> dict[str, Any]:
    return {
        "_id": review_id,
        "work_id": work["_id"],
        "work_kind": work["kind"],
        "work_title": work["title"],
        "genre_paths": work["genre_paths"],
        "author_user_id": author,
        "rating": rating,
        "title": title,
        "body": body,
        "request_id": request_id,
        "version": 1,
        "create_time": when,
        "update_time": when,
    }


def review_to_proto(doc: dict[str, Any]) -> catalog_pb2.Review:
    return catalog_pb2.Review(
        review_id=doc["_id"],
        work_id=doc["work_id"],
        author_user_id=doc["author_user_id"],
        rating=doc["rating"],
        title=doc.get("title", ""),
        body=doc.get("body", ""),
        genre_slugs=doc.get("genre_paths", []),
        create_time=timestamp(doc.get("create_time")),
        version=doc.get("version", 1),
        update_time=timestamp(doc.get("update_time")),
        work_kind=KIND_ENUM.get(doc.get("work_kind", ""), catalog_pb2.WORK_KIND_UNSPECIFIED),
    )


def review_created(doc: dict[str, Any]) -> catalog_events_pb2.ReviewCreated:
    return catalog_events_pb2.ReviewCreated(
        review_id=doc["_id"],
        work_id=doc["work_id"],
        work_title=doc["work_title"],
        author_user_id=doc["author_user_id"],
        rating=doc["rating"],
        genre_slugs=doc["genre_paths"],
        excerpt=doc["body"][:EXCERPT],
        create_time=timestamp(doc["create_time"]),
        work_kind=doc["work_kind"],
        version=doc["version"],
    )


def review_updated(doc: dict[str, Any], previous_rating: int) -> catalog_events_pb2.ReviewUpdated:
    return catalog_events_pb2.ReviewUpdated(
        review_id=doc["_id"],
        work_id=doc["work_id"],
        work_kind=doc["work_kind"],
        author_user_id=doc["author_user_id"],
        rating=doc["rating"],
        previous_rating=previous_rating,
        genre_slugs=doc["genre_paths"],
        excerpt=doc["body"][:EXCERPT],
        version=doc["version"],
        update_time=timestamp(doc["update_time"]),
    )


def review_deleted(doc: dict[str, Any], version: int, when: dt.datetime) -> catalog_events_pb2.ReviewDeleted:
    return catalog_events_pb2.ReviewDeleted(
        review_id=doc["_id"],
        work_id=doc["work_id"],
        work_kind=doc["work_kind"],
        author_user_id=doc["author_user_id"],
        rating=doc["rating"],
        genre_slugs=doc["genre_paths"],
        version=version,
        delete_time=timestamp(when),
    )


def rating_inc(rating: int, sign: int) -> dict[str, int]:
    """The `$inc` of adding (sign 1) or removing (sign -1) one rating from a work's aggregate."""
    return {"rating.count": sign, "rating.sum": sign * rating, f"rating.hist.{rating}": sign}


# -- cursors -----------------------------------------------------------------------------------------


def filters_hash(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_cursor(position: Any, filters: dict[str, Any]) -> str:
    raw = json.dumps({"p": position, "f": filters_hash(filters)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, filters: dict[str, Any]) -> Any:
    """The position of a cursor; ValueError if it is malformed or belongs to other filters."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, digest = data["p"], data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("not a page token of this listing") from exc
    if digest != filters_hash(filters):
        raise ValueError("the page token belongs to a listing with other filters")
    return position
