"""The catalog's part of the OpenAPI document (merged into openapi.openapi_spec). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.openapi_common import body, line, text

_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    404: "not found",
    409: "already exists (one review per user and work) or a stale version",
}
_BEARER = [{"bearer": []}]
#: the contracts' slug and genre_path rules (culture.validate.v1), as patterns
_SLUG = "^[a-z0-9]+(?:-[a-z0-9]+)*$"
_GENRE = "^[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*){0,4}$"
#: a line with at least one character that is not a space
_NOT_BLANK = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
_ID = line(128, 1)
_GENRE_PATH = {"type": "string", "maxLength": 324, "pattern": _GENRE}
#: a query filter: empty means no filter
_GENRE_FILTER = {"type": "string", "maxLength": 324, "pattern": "^(?:" + _GENRE[1:-1] + ")?$"}
_KIND_FILTER = {"enum": ["book", "film", ""], "description": "empty or absent: any kind"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _TEXT[c]) for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return body(schema)


def _int(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _query(**schemas: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, schema in schemas.items():
        param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
        if schema.get("type") == "array":
            param.update(style="form", explode=True)
        out.append(param)
    return out


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _names(max_items: int = 50) -> dict[str, Any]:
    return {"type": "array", "maxItems": max_items,
            "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NOT_BLANK}}


def work_input(*, create: bool) -> dict[str, Any]:
    """A work as the client sends it: the contract's rules on Work (culture.catalog.v1), as a schema.
    What a schema cannot say (the ISBN-13 check digit, book and film fields not mixed) is a 422."""
    properties: dict[str, Any] = {
        "title": line(300, 1, pattern=_NOT_BLANK) if create else line(300),
        "original_title": line(300),
        "description": text(10000),
        "release_year": _int(0, 2100),
        "language": line(35),
        "cover_url": line(2000),
        "genre_paths": {"type": "array", "maxItems": 10, "items": _GENRE_PATH},
        "tags": {"type": "array", "maxItems": 50,
                 "items": {"type": "string", "maxLength": 64, "pattern": _SLUG}},
        "authors": _names(), "isbn": line(17), "page_count": _int(0, 100000), "publisher": line(200),
        "directors": _names(), "cast": _names(), "runtime_minutes": _int(0, 10000),
        "countries": {"type": "array", "maxItems": 50, "items": {"type": "string", "pattern": "^[A-Z]{2}$"}},
    }
    if create:
        return {"type": "object", "required": ["kind", "title"], "additionalProperties": False,
                "properties": {"kind": {"enum": ["book", "film"]}, **properties, "request_id": line(128)}}
    return {"type": "object", "required": ["version"], "minProperties": 2, "additionalProperties": False,
            "properties": {**properties, "version": {"type": "integer", "minimum": 1,
                                                     "maximum": 2**62 - 1}}}


def catalog_paths() -> dict[str, Any]:
    """Paths of the catalog routes (services/culture_gateway/routes_catalog.py)."""
    work, review, profile = ({"$ref": f"#/components/schemas/{n}"} for n in ("Work", "Review", "Profile"))
    works_page = {
        "type": "object",
        "properties": {"works": {"type": "array", "items": work}, "next_page_token": {"type": "string"}},
    }
    review_fields = {"rating": _int(1, 5), "title": line(200), "body": text(10000)}
    review_in = {"type": "object", "required": ["rating"],
                 "properties": {**review_fields, "request_id": line(128)}}
    review_change = {"type": "object", "minProperties": 1, "additionalProperties": False,
                     "properties": review_fields}
    profile_change = {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {"display_name": line(64, 1, pattern=_NOT_BLANK), "bio": text(500),
                       "avatar_url": line(2000),
                       "favorite_genres": {"type": "array", "maxItems": 20, "items": _GENRE_PATH}}}
    page = {"page_size": _int(0, 1000), "page_token": line(1000)}
    return {
        "/api/works": {
            "post": {
                "summary": "Add a book or a film",
                "security": _BEARER,
                "requestBody": _body(work_input(create=True)),
                "responses": {
                    "201": _json({"type": "object", "properties": {"work": work}}, "created"),
                },
            },
            "get": {
                "summary": "List works, newest first (genre includes its descendants)",
                "parameters": _query(kind=_KIND_FILTER, genre=_GENRE_FILTER, tag=line(64),
                                     min_year=_int(0, 2100), max_year=_int(0, 2100), **page),
                "responses": {"200": _json(works_page, "a page")},
            },
        },
        "/api/works/{work_id}": {
            "parameters": [_path("work_id")],
            "get": {
                "summary": "One work (cached)",
                "responses": {
                    "200": _json({"type": "object", "properties": {"work": work}}, "the work"),
                    **_errors(404),
                },
            },
            "patch": {
                "summary": "Change a work you added; send the version you read",
                "security": _BEARER,
                "requestBody": _body(work_input(create=False)),
                "responses": {
                    "200": _json({"type": "object", "properties": {"work": work}}, "changed"),
                    "403": _json(_ERROR, "not yours to change"),
                    **_errors(404, 409),
                },
            },
        },
        "/api/search": {
            "get": {
                "summary": "Search titles, authors and directors (case- and accent-insensitive, ranked)",
                "parameters": _query(
                    q=line(200), kind=_KIND_FILTER,
                    genre={"type": "array", "maxItems": 20, "items": _GENRE_FILTER},
                    tag={"type": "array", "maxItems": 20, "items": line(64)}, **page),
                "responses": {"200": _json(works_page, "best matches first")},
            }
        },
        "/api/works/{work_id}/reviews": {
            "parameters": [_path("work_id")],
            "post": {
                "summary": "Review a work (once per user); the follow-up runs as a job",
                "security": _BEARER,
                "requestBody": _body(review_in),
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "properties": {
                                "review": review,
                                "job_id": {"type": "string"},
                                "status_url": {"type": "string"},
                            },
                        },
                        "created; follow status_url or /events?job_id=",
                    ),
                    **_errors(404, 409),
                },
            },
            "get": {
                "summary": "The reviews of a work, newest first",
                "parameters": _query(**page),
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "reviews": {"type": "array", "items": review},
                                "next_page_token": {"type": "string"},
                            },
                        },
                        "a page",
                    ),
                },
            },
        },
        "/api/reviews/{review_id}": {
            "parameters": [_path("review_id")],
            "patch": {
                "summary": "Change your review",
                "security": _BEARER,
                "requestBody": _body(review_change),
                "responses": {
                    "200": _json({"type": "object", "properties": {"review": review}}, "changed"),
                    "403": _json(_ERROR, "not yours to change"),
                    **_errors(404),
                },
            },
            "delete": {
                "summary": "Delete your review",
                "security": _BEARER,
                "responses": {"200": {"description": "deleted"}, "403": _json(_ERROR, "not yours to delete"),
                              **_errors(404)},
            },
        },
        "/api/profile": {
            "get": {
                "summary": "Your profile",
                "security": _BEARER,
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "the profile"),
                    **_errors(404),
                },
            },
            "patch": {
                "summary": "Change your display name, bio, avatar URL, favourite genres",
                "security": _BEARER,
                "requestBody": _body(profile_change),
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "changed"),
                    **_errors(404),
                },
            },
        },
        "/api/users/{user_id}/profile": {
            "parameters": [_path("user_id")],
            "get": {
                "summary": "A user's public profile",
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "the profile"),
                    **_errors(404),
                },
            },
        },
    }


def catalog_schemas() -> dict[str, Any]:
    s, i, strs = {"type": "string"}, {"type": "integer"}, {"type": "array", "items": {"type": "string"}}
    return {
        "Work": {
            "type": "object",
            "properties": {
                "work_id": s,
                "kind": {"enum": ["book", "film"]},
                "title": s,
                "original_title": s,
                "description": s,
                "release_year": i,
                "language": s,
                "genre_paths": strs,
                "tags": strs,
                "cover_url": s,
                "created_by": s,
                "version": i,
                "created_at": s,
                "updated_at": s,
                "rating": {
                    "type": "object",
                    "properties": {
                        "count": i,
                        "sum": i,
                        "average": {"type": "number"},
                        "histogram": {"type": "array", "items": i},
                    },
                },
                "authors": strs,
                "isbn": s,
                "page_count": i,
                "publisher": s,
                "directors": strs,
                "cast": strs,
                "runtime_minutes": i,
                "countries": strs,
            },
        },
        "Review": {
            "type": "object",
            "properties": {
                "review_id": s,
                "work_id": s,
                "author_user_id": s,
                "rating": i,
                "title": s,
                "body": s,
                "version": i,
                "created_at": s,
                "updated_at": s,
            },
        },
        "Profile": {
            "type": "object",
            "properties": {
                "user_id": s,
                "username": s,
                "display_name": s,
                "bio": s,
                "avatar_url": s,
                "favorite_genres": strs,
                "status": {"enum": ["complete", "incomplete"]},
                "incomplete_reason": s,
            },
        },
    }
