"""The catalog's HTTP routes: works, search, reviews, profiles. JSON <-> CatalogService.

Commands go to catalog api-write, queries to api-read; the caller's user id always comes from the
validated access token, never from the body. JSON shapes (see also openapi.py):

- a work: {work_id, kind: "book"|"film", title, original_title, description, release_year, language,
  genre_paths: [...], tags: [...], cover_url, created_by, version, created_at, updated_at,
  rating: {count, sum, average, histogram: [n1..n5]}, and for a book authors, isbn, page_count,
  publisher; for a film directors, cast, runtime_minutes, countries}
- a review: {review_id, work_id, author_user_id, rating, title, body, version, created_at, updated_at}
- a profile: {user_id, username, display_name, bio, avatar_url, favorite_genres, status:
  "complete"|"incomplete", incomplete_reason}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from culture.catalog.v1 import catalog_pb2
from culture_gateway.errors import HttpError, single_params

if TYPE_CHECKING:
    from culture_gateway.app import Gateway

_KINDS = {"book": catalog_pb2.WORK_KIND_BOOK, "film": catalog_pb2.WORK_KIND_FILM}
#: values of one repeated search filter (?genre=...&genre=...), as SearchWorksRequest allows
_MAX_FILTERS = 20
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_CORE_TEXT = ("title", "original_title", "description", "language", "cover_url")
_BOOK = {"authors": list, "isbn": str, "page_count": int, "publisher": str}
_FILM = {"directors": list, "cast": list, "runtime_minutes": int, "countries": list}
WORK_FIELDS = ("kind", *_CORE_TEXT, "release_year", "genre_paths", "tags", *_BOOK, *_FILM)


def _time(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def work_json(w: catalog_pb2.Work) -> dict[str, Any]:
    body: dict[str, Any] = {
        "work_id": w.work_id,
        "kind": _KIND_NAMES.get(w.kind, ""),
        "title": w.title,
        "original_title": w.original_title,
        "description": w.description,
        "release_year": w.release_year,
        "language": w.language,
        "genre_paths": list(w.genre_paths),
        "tags": [t.slug for t in w.tags],
        "cover_url": w.cover_url,
        "created_by": w.creator_user_id,
        "version": w.version,
        "created_at": _time(w.create_time),
        "updated_at": _time(w.update_time),
        "rating": {
            "count": w.rating.count,
            "sum": w.rating.sum,
            "average": w.rating.average,
            "histogram": list(w.rating.histogram),
        },
    }
    if w.WhichOneof("details") == "book":
        body.update(
            authors=list(w.book.authors),
            isbn=w.book.isbn,
            page_count=w.book.page_count,
            publisher=w.book.publisher,
        )
    elif w.WhichOneof("details") == "film":
        body.update(
            directors=list(w.film.directors),
            cast=list(w.film.cast),
            runtime_minutes=w.film.runtime_minutes,
            countries=list(w.film.countries),
        )
    return body


def review_json(r: catalog_pb2.Review) -> dict[str, Any]:
    return {
        "review_id": r.review_id,
        "work_id": r.work_id,
        "author_user_id": r.author_user_id,
        "rating": r.rating,
        "title": r.title,
        "body": r.body,
        "version": r.version,
        "created_at": _time(r.create_time),
        "updated_at": _time(r.update_time),
    }


def profile_json(p: catalog_pb2.Profile) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "username": p.username,
        "display_name": p.display_name,
        "bio": p.bio,
        "avatar_url": p.avatar_url,
        "favorite_genres": list(p.favorite_genre_slugs),
        "status": "incomplete" if p.state == catalog_pb2.PROFILE_STATE_INCOMPLETE else "complete",
        "incomplete_reason": p.incomplete_reason,
        "created_at": _time(p.create_time),
        "updated_at": _time(p.update_time),
    }


def whole_number(value: Any) -> int | None:
    """A JSON whole number as an int (5 and 5.0 alike, as JSON Schema's "integer"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _typed(data: dict[str, Any], name: str, kind: type, wrong: dict[str, str]) -> Any:
    value = data[name]
    if kind is int:
        value = whole_number(value)
        if value is None:
            wrong[name] = "must be a whole number"
    elif kind is list:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            wrong[name] = "must be a list of strings"
    elif not isinstance(value, kind):
        wrong[name] = f"must be a {'string' if kind is str else kind.__name__}"
    return value


def work_from_json(data: dict[str, Any], *, partial: bool) -> tuple[catalog_pb2.Work, list[str]]:
    """(the Work, the update-mask paths the body names). HTTP 422 fields for wrong types. Pure."""
    from culture_gateway.app import HttpError

    wrong: dict[str, str] = {}
    unknown = sorted(set(data) - set(WORK_FIELDS) - {"version", "request_id"})
    for name in unknown:
        wrong[name] = "unknown field"
    work = catalog_pb2.Work()
    paths: list[str] = []
    for name in _CORE_TEXT:
        if name in data and isinstance(_typed(data, name, str, wrong), str):
            setattr(work, name, data[name])
            paths.append(name)
    if "release_year" in data:
        year = _typed(data, "release_year", int, wrong)
        if "release_year" not in wrong:
            work.release_year = year if abs(year) < 2**31 else -1
            paths.append("release_year")
    for name in ("genre_paths", "tags"):
        if name in data and isinstance(_typed(data, name, list, wrong), list) and name not in wrong:
            if name == "tags":
                work.tags.extend(catalog_pb2.Tag(slug=t) for t in data[name])
            else:
                work.genre_paths.extend(data[name])
            paths.append(name)
    kind = data.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind not in _KINDS):
        wrong["kind"] = 'must be "book" or "film"'
        kind = "?"  # named wrong already; compared below, never hashed
    book = {n for n in _BOOK if n in data}
    film = {n for n in _FILM if n in data}
    if not partial and kind is None:
        wrong["kind"] = 'required: "book" or "film"'
    if (kind == "book" and film) or (kind == "film" and book) or (book and film):
        wrong["kind"] = "book and film fields cannot be mixed"
    for fields, spec, target in ((book, _BOOK, "book"), (film, _FILM, "film")):
        if not fields and not (not partial and kind == target):
            continue
        details = getattr(work, target)
        details.SetInParent()
        for n in fields:
            value = _typed(data, n, spec[n], wrong)
            if n in wrong:
                continue
            if spec[n] is list:
                getattr(details, n).extend(value)
            elif spec[n] is int:
                setattr(details, n, value if abs(value) < 2**31 else -1)
            else:
                setattr(details, n, value)
            paths.append(f"{target}.{n}")
    version = whole_number(data.get("version"))
    if "version" in data and (version is None or not 0 < version < 2**62):
        wrong["version"] = "must be the work's version as read (a positive whole number)"
    elif version is not None:
        work.version = version
    if wrong:
        raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields", wrong)
    return work, paths


class CatalogRoutes:
    """The routes, bound to a Gateway (its upstreams, settings, body parsing and authentication)."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway

    @property
    def _timeout(self) -> float:
        return self.g.settings.rpc_timeout_seconds

    def _int_param(self, request: Request, name: str, low: int, high: int) -> int:
        from culture_gateway.app import HttpError

        given = request.query_params.getlist(name)
        if not given:
            return 0
        raw = given[0]
        if len(given) > 1 or not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
            raise HttpError(
                422, "INVALID_ARGUMENT", f"bad {name}", {name: f"must be one whole number {low}-{high}"}
            )
        return int(raw)

    def _kind_param(self, request: Request) -> int:
        from culture_gateway.app import HttpError

        kind = request.query_params.get("kind", "")
        if kind and kind not in _KINDS:
            raise HttpError(422, "INVALID_ARGUMENT", "bad kind", {"kind": 'must be "book" or "film"'})
        return _KINDS.get(kind, catalog_pb2.WORK_KIND_UNSPECIFIED)

    async def create_work(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        work, _ = work_from_json(data, partial=False)
        request_id = self.g._strings(data, ("request_id",))["request_id"]
        reply = await self.g.up.catalog_write.CreateWork(
            catalog_pb2.CreateWorkRequest(work=work, creator_user_id=claims.user_id, request_id=request_id),
            timeout=self._timeout,
        )
        location = f"/api/works/{reply.work.work_id}"
        return JSONResponse({"work": work_json(reply.work)}, status_code=201, headers={"Location": location})

    async def list_works(self, request: Request) -> Response:
        single_params(request, "kind", "genre", "tag", "page_token")
        q = request.query_params
        reply = await self.g.up.catalog_read.ListWorks(
            catalog_pb2.ListWorksRequest(
                kind=self._kind_param(request),
                genre_path=q.get("genre", ""),
                tag_slug=q.get("tag", ""),
                min_year=self._int_param(request, "min_year", 0, 2100),
                max_year=self._int_param(request, "max_year", 0, 2100),
                page_size=self._int_param(request, "page_size", 0, 1000),
                page_token=q.get("page_token", ""),
            ),
            timeout=self._timeout,
        )
        return JSONResponse(
            {"works": [work_json(w) for w in reply.works], "next_page_token": reply.next_page_token}
        )

    async def get_work(self, request: Request) -> Response:
        reply = await self.g.up.catalog_read.GetWork(
            catalog_pb2.GetWorkRequest(work_id=request.path_params["work_id"]), timeout=self._timeout
        )
        return JSONResponse({"work": work_json(reply.work)})

    async def update_work(self, request: Request) -> Response:
        from culture_gateway.app import HttpError

        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        if "version" not in data:
            raise HttpError(
                422,
                "INVALID_ARGUMENT",
                "the version is required",
                {"version": "required: the version of the work as read"},
            )
        work, paths = work_from_json({k: v for k, v in data.items() if k != "kind"}, partial=True)
        if not paths:
            raise HttpError(422, "INVALID_ARGUMENT", "nothing to change", {"body": "name at least one field"})
        work.work_id = request.path_params["work_id"]
        reply = await self.g.up.catalog_write.UpdateWork(
            catalog_pb2.UpdateWorkRequest(
                work=work, editor_user_id=claims.user_id, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
            timeout=self._timeout,
        )
        return JSONResponse({"work": work_json(reply.work)})

    async def search(self, request: Request) -> Response:
        single_params(request, "q", "kind", "page_token")
        q = request.query_params
        crowded = {n: f"at most {_MAX_FILTERS} values" for n in ("genre", "tag")
                   if len(q.getlist(n)) > _MAX_FILTERS}
        if crowded:
            raise HttpError(422, "INVALID_ARGUMENT", "too many filter values", crowded)
        genres = [g for g in q.getlist("genre") if g]
        tags = [t for t in q.getlist("tag") if t]
        reply = await self.g.up.catalog_read.SearchWorks(
            catalog_pb2.SearchWorksRequest(
                query=q.get("q", ""),
                genre_slugs=genres,
                tag_slugs=tags,
                kind=self._kind_param(request),
                page_size=self._int_param(request, "page_size", 0, 1000),
                page_token=q.get("page_token", ""),
            ),
            timeout=self._timeout,
        )
        return JSONResponse(
            {"works": [work_json(w) for w in reply.works], "next_page_token": reply.next_page_token}
        )

    async def create_review(self, request: Request) -> Response:
        from culture_gateway.app import HttpError

        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        rating = whole_number(data.get("rating"))
        if rating is None or not 1 <= rating <= 5:
            raise HttpError(
                422,
                "INVALID_ARGUMENT",
                "the request has invalid fields",
                {"rating": "must be a whole number from 1 to 5"},
            )
        text = self.g._strings(data, ("title", "body", "request_id"))
        reply = await self.g.up.catalog_write.CreateReview(
            catalog_pb2.CreateReviewRequest(
                work_id=request.path_params["work_id"], author_user_id=claims.user_id, rating=rating, **text
            ),
            timeout=self._timeout,
            metadata=self.g._metadata(request),
        )
        status_url = f"/status/{reply.job_id}"
        return JSONResponse(
            {"review": review_json(reply.review), "job_id": reply.job_id, "status_url": status_url},
            status_code=201,
            headers={"Location": status_url},
        )

    async def list_reviews(self, request: Request) -> Response:
        single_params(request, "page_token")
        reply = await self.g.up.catalog_read.ListReviews(
            catalog_pb2.ListReviewsRequest(
                work_id=request.path_params["work_id"],
                page_size=self._int_param(request, "page_size", 0, 1000),
                page_token=request.query_params.get("page_token", ""),
            ),
            timeout=self._timeout,
        )
        return JSONResponse(
            {"reviews": [review_json(r) for r in reply.reviews], "next_page_token": reply.next_page_token}
        )

    async def update_review(self, request: Request) -> Response:
        from culture_gateway.app import HttpError

        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        paths = [n for n in ("rating", "title", "body") if n in data]
        wrong = {n: "unknown field" for n in data if n not in ("rating", "title", "body")}
        rating = whole_number(data.get("rating", 0))
        if "rating" in data and (rating is None or not 1 <= rating <= 5):
            wrong["rating"] = "must be a whole number from 1 to 5"
        if not paths and not wrong:
            wrong["body"] = "name at least one of rating, title, body"
        if wrong:
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields", wrong)
        text = self.g._strings(data, ("title", "body"))
        reply = await self.g.up.catalog_write.UpdateReview(
            catalog_pb2.UpdateReviewRequest(
                review_id=request.path_params["review_id"],
                author_user_id=claims.user_id,
                rating=rating,
                **text,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            timeout=self._timeout,
        )
        return JSONResponse({"review": review_json(reply.review)})

    async def delete_review(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.catalog_write.DeleteReview(
            catalog_pb2.DeleteReviewRequest(
                review_id=request.path_params["review_id"], author_user_id=claims.user_id
            ),
            timeout=self._timeout,
        )
        return JSONResponse(
            {"review_id": request.path_params["review_id"], "deleted": True, "version": reply.version}
        )

    async def _profile(self, user_id: str) -> Response:
        reply = await self.g.up.catalog_read.GetProfile(
            catalog_pb2.GetProfileRequest(user_id=user_id), timeout=self._timeout
        )
        return JSONResponse({"profile": profile_json(reply.profile)})

    async def my_profile(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        return await self._profile(claims.user_id)

    async def user_profile(self, request: Request) -> Response:
        return await self._profile(request.path_params["user_id"])

    async def update_profile(self, request: Request) -> Response:
        from culture_gateway.app import HttpError

        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        allowed = ("display_name", "bio", "avatar_url", "favorite_genres")
        wrong = {n: "unknown or read-only field" for n in data if n not in allowed}
        genres = data.get("favorite_genres", [])
        if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
            wrong["favorite_genres"] = "must be a list of strings"
        if not any(n in data for n in allowed) and not wrong:
            wrong["body"] = f"name at least one of {', '.join(allowed)}"
        if wrong:
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields", wrong)
        text = self.g._strings(data, ("display_name", "bio", "avatar_url"))
        paths = [("favorite_genre_slugs" if n == "favorite_genres" else n) for n in allowed if n in data]
        reply = await self.g.up.catalog_write.UpdateProfile(
            catalog_pb2.UpdateProfileRequest(
                profile=catalog_pb2.Profile(user_id=claims.user_id, favorite_genre_slugs=genres, **text),
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            timeout=self._timeout,
        )
        return JSONResponse({"profile": profile_json(reply.profile)})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/works", self.create_work, methods=["POST"]),
            Route("/api/works", self.list_works, methods=["GET"]),
            Route("/api/works/{work_id}", self.get_work, methods=["GET"]),
            Route("/api/works/{work_id}", self.update_work, methods=["PATCH"]),
            Route("/api/search", self.search, methods=["GET"]),
            Route("/api/works/{work_id}/reviews", self.create_review, methods=["POST"]),
            Route("/api/works/{work_id}/reviews", self.list_reviews, methods=["GET"]),
            Route("/api/reviews/{review_id}", self.update_review, methods=["PATCH"]),
            Route("/api/reviews/{review_id}", self.delete_review, methods=["DELETE"]),
            Route("/api/profile", self.my_profile, methods=["GET"]),
            Route("/api/profile", self.update_profile, methods=["PATCH"]),
            Route("/api/users/{user_id}/profile", self.user_profile, methods=["GET"]),
        ]
