"""The feed's HTTP route: GET /api/feed, my timeline, newest first. JSON <-> FeedService (api-read).

"me" is the user of the validated access token. An item: {item_id, created_at, actor_user_id, review:
{review_id, work_id, work_title, rating, excerpt, genres}} (see also openapi_feed.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
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

    async def events(self, request: Request) -> Response:
        """Server-sent events for my feed: `ready`, then `new-items` whenever reviews land in my
        timeline (then GET /api/feed), with `: keep-alive` comments in between."""
        claims = await self.g._authenticate(request)
        try:
            from culture_feed.push import subscribe  # the feed's notices (Redis pub/sub)
        except ImportError as exc:
            raise HttpError(503, "UNAVAILABLE", "feed notifications are not available") from exc
        source = subscribe(self.g.push.redis_url, claims.user_id)

        async def stream() -> AsyncIterator[str]:
            yield f"event: ready\ndata: {json.dumps({'subscribed': f'feed of {claims.user_id}'})}\n\n"
            async for item in self.g.push.pump(source):
                if item is None:
                    yield ": keep-alive\n\n"
                else:
                    yield f"event: new-items\ndata: {json.dumps(item)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/feed", self.feed, methods=["GET"]),
                Route("/api/feed/events", self.events, methods=["GET"])]
