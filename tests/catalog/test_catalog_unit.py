"""The catalog's pure parts: validation rules, documents, search tokens and ranking, cursors, the
gateway's JSON mapping. No servers."""

from __future__ import annotations

import datetime as dt

import pytest

from culture.catalog.v1 import catalog_pb2
from culture_catalog import documents as d
from culture_catalog import validation as v
from culture_gateway.app import HttpError
from culture_gateway.routes_catalog import work_from_json, work_json
from culture_grpc.validation import request_violations

pytestmark = pytest.mark.unit


def _book(**kw: object) -> catalog_pb2.Work:
    work = catalog_pb2.Work(
        title="Solaris",
        genre_paths=["fiction/science-fiction"],
        book=catalog_pb2.BookDetails(authors=["Stanisław Lem"], isbn="9780306406157"),
    )
    for k, val in kw.items():
        setattr(work, k, val)
    return work


@pytest.mark.parametrize(
    ("isbn", "ok"),
    [
        ("9780306406157", True),
        ("978-0-306-40615-7", True),
        ("9780306406158", False),
        ("978030640615", False),
        ("97803064061a7", False),
        ("", False),
    ],
)
def test_isbn13_checksum(isbn: str, ok: bool) -> None:
    assert v.valid_isbn13(isbn) is ok


def _problems(request: object) -> dict[str, str]:
    return dict(request_violations(request))  # type: ignore[arg-type]


@pytest.mark.parametrize("rating", [0, 6, -1, 100])
def test_ratings_outside_1_to_5_are_refused(rating: int) -> None:
    review = catalog_pb2.CreateReviewRequest(work_id="w", author_user_id="u", rating=rating)
    assert set(_problems(review)) == {"rating"}
    # an update that names the rating must give one; 0 is "not set" for the contract
    assert v.check_review_fields({"rating"}, rating) == [("rating", "must be a whole number from 1 to 5")]
    assert v.check_review_fields({"title"}, 0) == []


def test_text_limits_and_control_characters() -> None:
    def review(title: str = "", body: str = "") -> dict[str, str]:
        return _problems(catalog_pb2.CreateReviewRequest(work_id="w", author_user_id="u", rating=3,
                                                         title=title, body=body))

    assert review(body="x" * 10_000) == {}
    assert set(review(body="x" * 10_001)) == {"body"}
    assert set(review(title="a\x00")) == {"title"}
    assert review(body="two\nlines\tand tabs") == {}  # the text may have lines
    assert set(review(body="bell\x07")) == {"body"}
    assert set(review(title="C1 \x85")) == {"title"}
    assert review(title="Amélie") == {}


def test_a_work_names_each_bad_field() -> None:
    def create(work: catalog_pb2.Work) -> set[str]:
        request = catalog_pb2.CreateWorkRequest(work=work, creator_user_id="u-1")
        return set(_problems(request)) | {f for f, _ in v.check_work(work)}

    assert create(_book()) == set()
    bad = _book(title="a\x00")
    bad.book.isbn = "9780306406158"
    bad.genre_paths.append("Fiction//X")
    bad.tags.add(slug="Not A Slug")
    assert create(bad) == {"work.title", "work.book.isbn", "work.genre_paths[1]", "work.tags[0].slug"}
    assert create(catalog_pb2.Work(title="T")) == {"work.details"}
    assert create(catalog_pb2.Work(book=catalog_pb2.BookDetails())) == {"work.title"}
    assert _problems(catalog_pb2.CreateWorkRequest()) == {
        "work": "value is required", "creator_user_id": "must be at least 1 characters"}
    # an update checks only what it changes
    assert v.check_work(catalog_pb2.Work(title="New"), fields={"title"}) == []
    assert _problems(catalog_pb2.ListReviewsRequest()) == {"filter": "exactly one field is required in oneof"}


def test_search_tokens_fold_case_and_accents_and_hold_prefixes() -> None:
    tokens = d.search_tokens(["Le Fabuleux Destin d'Amélie Poulain", "Jean-Pierre Jeunet"])
    assert {"amelie", "am", "ame", "jeunet", "jean", "pierre"} <= set(tokens)
    assert d.query_tokens("AMÉLIE jeu") == ["amelie", "jeu"]
    assert d.fold("Ærø Straße") == "ærø strasse"


def test_ranking_prefers_whole_title_words_over_prefixes_and_people() -> None:
    def doc(title: str, authors: list[str]) -> dict:
        return {"title": title, "attrs": {"authors": authors}, "rating": {"count": 0}}

    tokens = d.query_tokens("dune")
    exact, prefix, person = doc("Dune", []), doc("Dunes of Sand", []), doc("Other", ["Dune Author"])
    assert d.rank(exact, tokens) > d.rank(prefix, tokens)
    assert d.rank(exact, tokens) > d.rank(person, tokens)


def test_genre_ancestors() -> None:
    assert d.ancestors(["fiction/science-fiction/cyberpunk", "fiction/thriller"]) == [
        "fiction",
        "fiction/science-fiction",
        "fiction/science-fiction/cyberpunk",
        "fiction/thriller",
    ]


def test_cursor_round_trip_and_refuses_other_filters_or_garbage() -> None:
    token = d.encode_cursor("abc", {"kind": "book"})
    assert d.decode_cursor(token, {"kind": "book"}) == "abc"
    with pytest.raises(ValueError):
        d.decode_cursor(token, {"kind": "film"})
    with pytest.raises(ValueError):
        d.decode_cursor("%%%not-base64", {})


def test_work_document_round_trip_update_and_events() -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    doc = d.work_document(_book(), "w1", "u1", when)
    assert doc["genre_ancestors"] == ["fiction", "fiction/science-fiction"]
    work = d.work_to_proto(doc)
    assert work.kind == catalog_pb2.WORK_KIND_BOOK and work.book.authors == ["Stanisław Lem"]
    assert list(work.rating.histogram) == [0] * 5 and work.version == 1
    changes = d.apply_work_update(doc, catalog_pb2.Work(title="Solaris (1961)"), {"title"}, when)
    assert (
        changes["version"] == 2
        and changes["title"] == "Solaris (1961)"
        and "1961" in changes["search_tokens"]
    )
    assert changes["attrs"]["authors"] == ["Stanisław Lem"]  # untouched fields stay
    event = d.work_created(doc)
    assert (
        event.kind == "book" and list(event.genre_paths) == ["fiction/science-fiction"] and event.version == 1
    )
    assert d.rating_inc(4, -1) == {"rating.count": -1, "rating.sum": -4, "rating.hist.4": -1}


def test_gateway_json_of_a_work_and_back() -> None:
    work, paths = work_from_json(
        {
            "kind": "film",
            "title": "Stalker",
            "directors": ["Andrei Tarkovsky"],
            "runtime_minutes": 162,
            "genre_paths": ["film/science-fiction"],
        },
        partial=False,
    )
    assert work.WhichOneof("details") == "film" and work.film.runtime_minutes == 162
    assert "film.directors" in paths and "title" in paths
    assert work_json(work)["directors"] == ["Andrei Tarkovsky"]
    with pytest.raises(HttpError) as bad:
        work_from_json({"kind": "film", "title": 3, "authors": ["x"], "runtime_minutes": 1.5}, partial=False)
    assert {"title", "kind", "runtime_minutes"} <= set(bad.value.fields or {})


def test_seed_generates_valid_works_and_has_a_follow_step() -> None:
    import random

    from culture_stack.seed import Seeder, SeedPlan, isbn13, work_body

    rng = random.Random(1)
    assert all(v.valid_isbn13(isbn13(rng)) for _ in range(200))
    for i in range(30):
        body = work_body(rng, i)
        work, _ = work_from_json(body, partial=False)
        assert v.check_work(work) == [], body
        assert _problems(catalog_pb2.CreateWorkRequest(work=work, creator_user_id="u-1")) == {}, body
    seeder = Seeder(SeedPlan(), lambda line: None)
    assert [name for name, _ in seeder.steps] == ["users", "works", "reviews", "follows"]


def test_search_matching_in_code() -> None:
    doc = {
        "search_tokens": ["dune", "du", "dun", "frank"],
        "kind": "book",
        "genre_ancestors": ["fiction", "fiction/science-fiction"],
        "tags": ["classic", "series"],
    }
    assert d.most_selective(["du", "frank"]) == "frank"
    assert d.matches(doc, {"kind": "book", "genre_ancestors": "fiction"}, ["dun", "frank"])
    assert not d.matches(doc, {}, ["dun", "herbert"])
    assert not d.matches(doc, {"kind": "film"}, ["dune"])
    assert d.matches(
        doc, {"genre_ancestors": {"$in": ["poetry", "fiction"]}, "tags": {"$all": ["classic"]}}, []
    )
    assert not d.matches(doc, {"tags": {"$all": ["classic", "debut"]}}, [])


@pytest.mark.parametrize("kind", [{}, ["book"], 3, None, "tape"])
def test_a_kind_that_is_not_book_or_film_is_named(kind: object) -> None:
    with pytest.raises(HttpError) as bad:
        work_from_json({"kind": kind, "title": "T", "authors": ["A"]}, partial=False)
    assert bad.value.status == 422 and "kind" in (bad.value.fields or {})
