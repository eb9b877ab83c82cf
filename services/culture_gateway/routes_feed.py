"""The feed's HTTP route: GET /api/feed, my timeline, newest first. JSON <-> FeedService (api-read).

"me" is the user of the validated access token. An item: {item_id, created_at, actor_user_id, review:
{review_id, work_id, work_title, rating, excerpt, genres}} (see also openapi_feed.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from culture.feed.v1 import feed_pb2
from culture_gateway.errors import HttpError

if TYPE_CHECKING:
    from culture_gateway.app import Gateway

#: the contract's bounds (culture.feed.v1.GetFeedRequest): 0 means 20; more than 100 is refused here
MAX_PAGE_SIZE = 100
MAX_PAGE_TOKEN = 500


def _time(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def item_json(item: feed_pb2.FeedItem) -> dict[str, Any]:
    r = item.review
    return {"item_id": item.item_id, "created_at": _time(item.create_time),
            "actor_user_id": item.actor_user_id,
            "review": {"review_id": r.review_id, "work_id": r.work_id, "work_title": r.work_title,
                       "rating": r.rating, "excerpt": r.excerpt, "genres": list(r.genre_slugs)}}


def page_params(request: Request) -> tuple[int, str]:
    """(page_size, page_token) of the query; 422 naming the field when out of the documented bounds."""
    raw = request.query_params.get("page_size", "")
    size = 0
    if raw != "":
        if not raw.isdigit() or int(raw) > MAX_PAGE_SIZE:
            raise HttpError(422, "INVALID_ARGUMENT", "bad page_size",
                            {"page_size": f"must be a whole number 0-{MAX_PAGE_SIZE}"})
        size = int(raw)
    token = request.query_params.get("page_token", "")
    if len(token) > MAX_PAGE_TOKEN:
        raise HttpError(422, "INVALID_ARGUMENT", "bad page_token",
                        {"page_token": "not a page token of this feed"})
    return size, token


class FeedRoutes:
    """The feed route, bound to a Gateway (its upstreams, settings and auth)."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway

    async def feed(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        size, token = page_params(request)
        reply = await self.g.up.feed_read.GetFeed(
            feed_pb2.GetFeedRequest(user_id=claims.user_id, page_size=size, page_token=token),
            timeout=self.g.settings.rpc_timeout_seconds)
        return JSONResponse({"items": [item_json(i) for i in reply.items],
                             "next_page_token": reply.next_page_token})

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/feed", self.feed, methods=["GET"])]
