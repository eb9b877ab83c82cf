"""The feed's part of the OpenAPI document (merged into openapi.openapi_spec). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.routes_feed import MAX_PAGE_SIZE, MAX_PAGE_TOKEN

_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    401: "missing, invalid or expired token",
    404: "I have no feed (its creation failed, or registration is still in progress)",
    422: "invalid fields (fields: field -> what is wrong), e.g. a page_token this feed did not issue",
    503: "the feed service is unavailable",
    504: "the feed service did not answer in time",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def feed_paths() -> dict[str, Any]:
    """Paths of the feed route (services/culture_gateway/routes_feed.py)."""
    page = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/FeedItem"}},
        "next_page_token": {"type": "string", "description": "empty on the last page"}}}
    return {
        "/api/feed": {
            "get": {"summary": "My feed: reviews by people I follow in genres I am interested in, "
                               "newest first",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "page_size", "in": "query",
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE},
                         "description": "items per page; 0 or absent: 20"},
                        {"name": "page_token", "in": "query",
                         "schema": {"type": "string", "maxLength": MAX_PAGE_TOKEN},
                         "description": "next_page_token of the previous page"}],
                    "responses": {"200": _json(page, "a page (empty when nothing reached my feed yet)"),
                                  **{str(c): _json(_ERROR, t) for c, t in _TEXT.items()}}}},
        "/api/feed/events": {
            "get": {"summary": "Server-sent events: `ready`, then `new-items` ({type, user_id, count, "
                               "actor_user_id, review_id}) whenever reviews land in my feed",
                    "security": [{"bearer": []}, {"queryToken": []}],
                    "responses": {"200": {"description": "text/event-stream",
                                          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                                  "401": _json(_ERROR, _TEXT[401]),
                                  "503": _json(_ERROR, "notifications are unavailable")}}},
    }


def feed_schemas() -> dict[str, Any]:
    return {"FeedItem": {"type": "object", "properties": {
        "item_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "actor_user_id": {"type": "string"},
        "review": {"type": "object", "properties": {
            "review_id": {"type": "string"}, "work_id": {"type": "string"}, "work_title": {"type": "string"},
            "rating": {"type": "integer"}, "excerpt": {"type": "string"},
            "genres": {"type": "array", "items": {"type": "string"}}}}}}}
