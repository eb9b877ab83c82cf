"""The graph's request validation rules (pure). Each check returns `field -> what is wrong` pairs; the
servicers raise them as INVALID_ARGUMENT with google.rpc.BadRequest field violations."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from culture_graph import model

Violations = list[tuple[str, str]]
MAX_ID = 128
MAX_GENRES = 50
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def has_control(text: str) -> bool:
    """Whether the text holds NUL or another control character."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def check_id(field: str, value: str) -> Violations:
    """A user or work id: required, at most 128 characters, no control characters."""
    if not value.strip():
        return [(field, "required")]
    if len(value) > MAX_ID:
        return [(field, f"at most {MAX_ID} characters (got {len(value)})")]
    if has_control(value):
        return [(field, "must not contain NUL or other control characters")]
    return []


def check_page(page_size: int, page_token: str) -> Violations:
    out: Violations = []
    if page_size < 0:
        out.append(("page_size", "must not be negative"))
    if len(page_token) > 2000 or has_control(page_token):
        out.append(("page_token", "not a page token of this list"))
    return out


def check_min_rating(field: str, value: int) -> Violations:
    if value and not model.MIN_RATING <= value <= model.MAX_RATING:
        return [(field, f"must be from {model.MIN_RATING} to {model.MAX_RATING} (0: {model.LIKED})")]
    return []


def check_genres(field: str, slugs: Sequence[str], *, required: bool = False) -> Violations:
    """Genre paths: 1-5 lowercase slugs joined by "/" (as the catalog names them)."""
    out: Violations = []
    if required and not slugs:
        out.append((field, "at least one genre"))
    if len(slugs) > MAX_GENRES:
        out.append((field, f"at most {MAX_GENRES} genres"))
    for i, path in enumerate(slugs):
        parts = path.split("/")
        if not path or len(parts) > 5 or not all(_SLUG.match(p) and len(p) <= 64 for p in parts):
            out.append((f"{field}[{i}]", 'must be 1-5 lowercase slugs joined by "/", e.g. "fiction/fantasy"'))
    return out


def check_follow(follower: str, followee: str) -> Violations:
    out = check_id("follower_user_id", follower) + check_id("followee_user_id", followee)
    if not out and follower == followee:
        out.append(("followee_user_id", "a user cannot follow themselves"))
    return out
