"""The catalog's request validation rules, in one pure module (no I/O).

Each check returns `field -> what is wrong` pairs; the servicers raise them as INVALID_ARGUMENT with
google.rpc.BadRequest field violations (culture_grpc.errors.invalid_argument). Issue #13 moves these
rules into buf.validate annotations of the contract; until then this is the one place they live.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from culture.catalog.v1 import catalog_pb2

MAX_TEXT = 10_000
MAX_TITLE = 300
MAX_REVIEW_TITLE = 200
MAX_BIO = 500
MAX_SHORT = 200
MAX_LIST = 50
MAX_URL = 2_000
MAX_BATCH = 100
MIN_YEAR, MAX_YEAR = 1, 2100
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TAB_NEWLINE = frozenset("\t\n\r")

Violations = list[tuple[str, str]]


def has_control(text: str, *, multiline: bool = False) -> bool:
    """Whether the text holds NUL or another control character (tab/newline allowed if multiline)."""
    for ch in text:
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in _TAB_NEWLINE):
            return True
    return False


def check_text(
    field: str, value: str, limit: int, *, required: bool = False, multiline: bool = False
) -> Violations:
    """A string field: required, at most `limit` characters, no control characters."""
    if required and not value.strip():
        return [(field, "required")]
    if len(value) > limit:
        return [(field, f"at most {limit} characters (got {len(value)})")]
    if has_control(value, multiline=multiline):
        return [(field, "must not contain NUL or other control characters")]
    return []


def check_list(field: str, values: Iterable[str], limit: int = MAX_SHORT) -> Violations:
    out: Violations = []
    values = list(values)
    if len(values) > MAX_LIST:
        out.append((field, f"at most {MAX_LIST} entries"))
    for i, v in enumerate(values):
        out += check_text(f"{field}[{i}]", v, limit, required=True)
    return out


def valid_isbn13(isbn: str) -> bool:
    """Whether `isbn` is 13 digits (hyphens allowed) with a correct ISBN-13 check digit."""
    digits = isbn.replace("-", "")
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def normalise_isbn(isbn: str) -> str:
    return isbn.replace("-", "")


def check_genre_path(field: str, path: str) -> Violations:
    """A genre path: 1-5 lowercase slugs joined by "/"."""
    parts = path.split("/")
    if not path or len(parts) > 5 or not all(_SLUG.match(p) and len(p) <= 64 for p in parts):
        return [(field, 'must be 1-5 lowercase slugs joined by "/", e.g. "fiction/science-fiction"')]
    return []


def check_rating(field: str, rating: int) -> Violations:
    if not 1 <= rating <= 5:
        return [(field, "must be a whole number from 1 to 5")]
    return []


def check_id(field: str, value: str) -> Violations:
    """An id given by a caller: required, short, printable."""
    return check_text(field, value, 128, required=True)


def check_work(work: catalog_pb2.Work, prefix: str = "work", *, fields: set[str] | None = None) -> Violations:
    """A work to create (every field) or the fields of it an update names (`fields`)."""

    def wanted(name: str) -> bool:
        return fields is None or name in fields or name.split(".")[0] in fields

    out: Violations = []
    if wanted("title"):
        out += check_text(f"{prefix}.title", work.title, MAX_TITLE, required=True)
    for name, limit in (("original_title", MAX_TITLE), ("language", 35), ("cover_url", MAX_URL)):
        if wanted(name):
            out += check_text(f"{prefix}.{name}", getattr(work, name), limit)
    if wanted("description"):
        out += check_text(f"{prefix}.description", work.description, MAX_TEXT, multiline=True)
    if wanted("release_year") and work.release_year and not MIN_YEAR <= work.release_year <= MAX_YEAR:
        out.append((f"{prefix}.release_year", f"must be from {MIN_YEAR} to {MAX_YEAR} (0: unknown)"))
    if wanted("genre_paths"):
        if len(work.genre_paths) > 10:
            out.append((f"{prefix}.genre_paths", "at most 10 genres"))
        for i, path in enumerate(work.genre_paths):
            out += check_genre_path(f"{prefix}.genre_paths[{i}]", path)
    if wanted("tags"):
        if len(work.tags) > MAX_LIST:
            out.append((f"{prefix}.tags", f"at most {MAX_LIST} tags"))
        for i, tag in enumerate(work.tags):
            if not _SLUG.match(tag.slug) or len(tag.slug) > 64:
                out.append((f"{prefix}.tags[{i}].slug", "must be a lowercase slug, e.g. time-travel"))
            out += check_text(f"{prefix}.tags[{i}].display_name", tag.display_name, MAX_SHORT)
    kind = work.WhichOneof("details")
    if fields is None and kind is None:
        out.append((f"{prefix}.details", "exactly one of book or film must be set"))
    if kind == "book" and (wanted("book") or fields is None):
        b = work.book
        out += check_list(f"{prefix}.book.authors", b.authors)
        out += check_text(f"{prefix}.book.publisher", b.publisher, MAX_SHORT)
        if b.isbn and (has_control(b.isbn) or not valid_isbn13(b.isbn)):
            out.append((f"{prefix}.book.isbn", "must be a valid ISBN-13 (13 digits, correct check digit)"))
        if not 0 <= b.page_count <= 100_000:
            out.append((f"{prefix}.book.page_count", "must be from 0 to 100000"))
    if kind == "film" and (wanted("film") or fields is None):
        f = work.film
        out += check_list(f"{prefix}.film.directors", f.directors)
        out += check_list(f"{prefix}.film.cast", f.cast)
        for i, c in enumerate(f.countries):
            if not re.fullmatch(r"[A-Z]{2}", c):
                out.append((f"{prefix}.film.countries[{i}]", "must be an ISO 3166-1 alpha-2 code, e.g. IT"))
        if not 0 <= f.runtime_minutes <= 10_000:
            out.append((f"{prefix}.film.runtime_minutes", "must be from 0 to 10000"))
    return out


def check_review_fields(rating: int | None, title: str | None, body: str | None) -> Violations:
    """The rating, title and text of a review (None: not being set)."""
    out: Violations = []
    if rating is not None:
        out += check_rating("rating", rating)
    if title is not None:
        out += check_text("title", title, MAX_REVIEW_TITLE)
    if body is not None:
        out += check_text("body", body, MAX_TEXT, multiline=True)
    return out


def check_profile(profile: catalog_pb2.Profile, fields: set[str]) -> Violations:
    out: Violations = []
    if "display_name" in fields:
        out += check_text("profile.display_name", profile.display_name, 64, required=True)
    if "bio" in fields:
        out += check_text("profile.bio", profile.bio, MAX_BIO, multiline=True)
    if "avatar_url" in fields:
        out += check_text("profile.avatar_url", profile.avatar_url, MAX_URL)
    if "favorite_genre_slugs" in fields:
        if len(profile.favorite_genre_slugs) > 20:
            out.append(("profile.favorite_genre_slugs", "at most 20 genres"))
        for i, path in enumerate(profile.favorite_genre_slugs):
            out += check_genre_path(f"profile.favorite_genre_slugs[{i}]", path)
    return out


def check_page(page_size: int, page_token: str) -> Violations:
    out: Violations = []
    if page_size < 0:
        out.append(("page_size", "must not be negative"))
    out += check_text("page_token", page_token, 1000)
    return out


def page_size_of(requested: int) -> int:
    """0 -> 20; at most 100."""
    return 20 if requested <= 0 else min(requested, 100)
