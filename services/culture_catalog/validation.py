"""The catalog's request checks that the contract's buf.validate annotations cannot say.

Lengths, patterns, ranges and control characters are annotations in proto/culture/catalog/v1/
(enforced for every RPC by culture_grpc's ValidationInterceptor before a servicer runs). What is
left here depends on the RPC or on data: what CreateWork requires that an update may leave out,
what an update mask selects, the ISBN-13 check digit, a year range's order. Each check returns
`field -> what is wrong` pairs; the servicers raise them as INVALID_ARGUMENT (invalid_argument).
"""

from __future__ import annotations

from culture.catalog.v1 import catalog_pb2

Violations = list[tuple[str, str]]


def valid_isbn13(isbn: str) -> bool:
    """Whether `isbn` is 13 digits (hyphens allowed) with a correct ISBN-13 check digit."""
    digits = isbn.replace("-", "")
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def normalise_isbn(isbn: str) -> str:
    return isbn.replace("-", "")


def check_work(work: catalog_pb2.Work, prefix: str = "work", *, fields: set[str] | None = None) -> Violations:
    """A work to create (`fields` None: the title and the details are required) or the fields of it an
    update names (`fields`): what the annotations on Work leave open."""
    out: Violations = []
    creating = fields is None
    if (creating or "title" in fields) and not work.title.strip():
        out.append((f"{prefix}.title", "required"))
    kind = work.WhichOneof("details")
    if creating and kind is None:
        out.append((f"{prefix}.details", "exactly one of book or film must be set"))
    if kind == "book" and (creating or "book" in {f.split(".")[0] for f in fields}):
        if work.book.isbn and not valid_isbn13(work.book.isbn):
            out.append((f"{prefix}.book.isbn", "must be a valid ISBN-13 (13 digits, correct check digit)"))
    return out


def check_review_fields(fields: set[str], rating: int) -> Violations:
    """An update names the rating: then it must be given (the annotation allows 0 as "not set")."""
    if "rating" in fields and not 1 <= rating <= 5:
        return [("rating", "must be a whole number from 1 to 5")]
    return []


def check_profile(profile: catalog_pb2.Profile, fields: set[str]) -> Violations:
    """An update that names the display name may not blank it."""
    if "display_name" in fields and not profile.display_name.strip():
        return [("profile.display_name", "required")]
    return []


def check_year_range(min_year: int, max_year: int) -> Violations:
    if min_year and max_year and min_year > max_year:
        return [("min_year", "must not be above max_year")]
    return []


def page_size_of(requested: int) -> int:
    """0 -> 20; at most 100."""
    return 20 if requested <= 0 else min(requested, 100)
