"""The catalog's part of the OpenAPI document (merged into openapi.openapi_spec). Pure data."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    400: "malformed JSON",
    401: "missing, invalid or expired token",
    403: "not yours to change",
    404: "not found",
    409: "already exists (one review per user and work) or a stale version",
    413: "body too large",
    422: "invalid fields (fields: field -> what is wrong)",
    503: "an upstream service is unavailable",
}
_BEARER = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _TEXT[c]) for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(*names: str, integer: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "query", "schema": {"type": "integer" if n in integer else "string"}} for n in names
    ]


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def catalog_paths() -> dict[str, Any]:
    """Paths of the catalog routes (services/culture_gateway/routes_catalog.py)."""
    work, review, profile = ({"$ref": f"#/components/schemas/{n}"} for n in ("Work", "Review", "Profile"))
    works_page = {
        "type": "object",
        "properties": {"works": {"type": "array", "items": work}, "next_page_token": {"type": "string"}},
    }
    review_in = {
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "title": {"type": "string", "maxLength": 200},
            "body": {"type": "string", "maxLength": 10000},
        },
    }
    return {
        "/api/works": {
            "post": {
                "summary": "Add a book or a film",
                "security": _BEARER,
                "requestBody": _body(work),
                "responses": {
                    "201": _json({"type": "object", "properties": {"work": work}}, "created"),
                    **_errors(400, 401, 413, 422, 503),
                },
            },
            "get": {
                "summary": "List works, newest first (genre includes its descendants)",
                "parameters": _query(
                    "kind",
                    "genre",
                    "tag",
                    "min_year",
                    "max_year",
                    "page_size",
                    "page_token",
                    integer=("min_year", "max_year", "page_size"),
                ),
                "responses": {"200": _json(works_page, "a page"), **_errors(422, 503)},
            },
        },
        "/api/works/{work_id}": {
            "parameters": [_path("work_id")],
            "get": {
                "summary": "One work (cached)",
                "responses": {
                    "200": _json({"type": "object", "properties": {"work": work}}, "the work"),
                    **_errors(404, 503),
                },
            },
            "patch": {
                "summary": "Change a work you added; send the version you read",
                "security": _BEARER,
                "requestBody": _body(work),
                "responses": {
                    "200": _json({"type": "object", "properties": {"work": work}}, "changed"),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                },
            },
        },
        "/api/search": {
            "get": {
                "summary": "Search titles, authors and directors (case- and accent-insensitive, ranked)",
                "parameters": _query(
                    "q", "kind", "genre", "tag", "page_size", "page_token", integer=("page_size",)
                ),
                "responses": {"200": _json(works_page, "best matches first"), **_errors(422, 503)},
            }
        },
        "/api/works/{work_id}/reviews": {
            "parameters": [_path("work_id")],
            "post": {
                "summary": "Review a work (once per user); the follow-up runs as a job",
                "security": _BEARER,
                "requestBody": _body({**review_in, "required": ["rating"]}),
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
                    **_errors(400, 401, 404, 409, 413, 422, 503),
                },
            },
            "get": {
                "summary": "The reviews of a work, newest first",
                "parameters": _query("page_size", "page_token", integer=("page_size",)),
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
                    **_errors(422, 503),
                },
            },
        },
        "/api/reviews/{review_id}": {
            "parameters": [_path("review_id")],
            "patch": {
                "summary": "Change your review",
                "security": _BEARER,
                "requestBody": _body(review_in),
                "responses": {
                    "200": _json({"type": "object", "properties": {"review": review}}, "changed"),
                    **_errors(400, 401, 403, 404, 413, 422, 503),
                },
            },
            "delete": {
                "summary": "Delete your review",
                "security": _BEARER,
                "responses": {"200": {"description": "deleted"}, **_errors(401, 403, 404, 503)},
            },
        },
        "/api/profile": {
            "get": {
                "summary": "Your profile",
                "security": _BEARER,
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "the profile"),
                    **_errors(401, 404, 503),
                },
            },
            "patch": {
                "summary": "Change your display name, bio, avatar URL, favourite genres",
                "security": _BEARER,
                "requestBody": _body(profile),
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "changed"),
                    **_errors(400, 401, 404, 413, 422, 503),
                },
            },
        },
        "/api/users/{user_id}/profile": {
            "parameters": [_path("user_id")],
            "get": {
                "summary": "A user's public profile",
                "responses": {
                    "200": _json({"type": "object", "properties": {"profile": profile}}, "the profile"),
                    **_errors(404, 503),
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
