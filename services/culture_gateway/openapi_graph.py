"""The graph's part of the OpenAPI document (merged into openapi.openapi_spec). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.openapi_common import line

_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    401: "missing, invalid or expired token",
    404: "no such user",
    422: "invalid fields (fields: field -> what is wrong), e.g. following yourself or a bad page_token",
    503: "the graph service is unavailable",
}
_BEARER = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _TEXT[c]) for c in codes}


def _path(name: str) -> dict[str, Any]:
    # ids as the contract (culture.graph.v1) takes them: one line, 1-128 characters
    return {"name": name, "in": "path", "required": True, "schema": line(128, 1)}


_PAGE = [{"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10_000}},
         {"name": "page_token", "in": "query", "schema": line(1000),
          "description": "next_page_token of the previous page"}]
_MIN_RATING = {"name": "min_rating", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 5},
               "description": "lowest rating that counts as liked; 0 or absent: 4"}


def _page_of(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "array", "items": item},
                                             "next_page_token": {"type": "string"}}}


def graph_paths() -> dict[str, Any]:
    """Paths of the graph routes (services/culture_gateway/routes_graph.py)."""
    follow = {"$ref": "#/components/schemas/Follow"}
    follows = _page_of("follows", follow)
    return {
        "/api/users/{user_id}/follow": {
            "parameters": [_path("user_id")],
            "put": {"summary": "Follow a user (idempotent)", "security": _BEARER,
                    "responses": {"201": _json({"type": "object", "properties": {
                        "follow": follow, "created": {"type": "boolean"}}}, "now following"),
                        "200": _json({"type": "object", "properties": {
                            "follow": follow, "created": {"type": "boolean"}}}, "was following already"),
                        **_errors(401, 404, 422, 503)}},
            "delete": {"summary": "Stop following a user (idempotent)", "security": _BEARER,
                       "responses": {"200": _json({"type": "object", "properties": {
                           "removed": {"type": "boolean"}}}, "removed: whether a follow was removed"),
                           **_errors(401, 404, 422, 503)}},
        },
        "/api/users/{user_id}/followers": {
            "get": {"summary": "Who follows the user, most recent first",
                    "parameters": [_path("user_id"), *_PAGE],
                    "responses": {"200": _json(follows, "a page"), **_errors(404, 422, 503)}}},
        "/api/users/{user_id}/following": {
            "get": {"summary": "Whom the user follows, most recent first",
                    "parameters": [_path("user_id"), *_PAGE],
                    "responses": {"200": _json(follows, "a page"), **_errors(404, 422, 503)}}},
        "/api/works/{work_id}/friends-who-liked": {
            "get": {"summary": "People I follow who rated the work highly, best rating first",
                    "security": _BEARER, "parameters": [_path("work_id"), _MIN_RATING, *_PAGE],
                    "responses": {"200": _json(_page_of("ratings", {"type": "object", "properties": {
                        "user_id": {"type": "string"}, "rating": {"type": "integer"},
                        "rated_at": {"type": "string", "format": "date-time"}}}), "a page"),
                        **_errors(401, 404, 422, 503)}}},
        "/api/me/similar": {
            "get": {"summary": "Users whose ratings resemble mine (mean agreement on co-rated works)",
                    "security": _BEARER, "parameters": _PAGE,
                    "responses": {"200": _json(_page_of("users", {"type": "object", "properties": {
                        "user_id": {"type": "string"},
                        "similarity": {"type": "number", "minimum": 0, "maximum": 1},
                        "common_work_count": {"type": "integer"},
                        "shared_genres": {"type": "array", "items": {"type": "string"}}}}),
                        "most similar first"), **_errors(401, 404, 422, 503)}}},
        "/api/me/recommendations": {
            "get": {"summary": "Works liked by people up to three follows away, weighted by taste "
                               "similarity, excluding what I rated",
                    "security": _BEARER,
                    "parameters": [{"name": "genre", "in": "query", "schema": line(324, 1),
                                    "description": "restrict to these genres (repeatable); default: "
                                                   "my genres of interest"}, _MIN_RATING, *_PAGE],
                    "responses": {"200": _json(_page_of("recommendations", {"type": "object", "properties": {
                        "work_id": {"type": "string"}, "score": {"type": "number"},
                        "recommended_by": {"type": "array", "items": {"type": "string"}},
                        "genres": {"type": "array", "items": {"type": "string"}}}}), "best first"),
                        **_errors(401, 404, 422, 503)}}},
    }


def graph_schemas() -> dict[str, Any]:
    return {"Follow": {"type": "object", "properties": {
        "follower_user_id": {"type": "string"}, "followee_user_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"}}}}
