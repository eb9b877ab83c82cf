"""The graph's HTTP routes: follows and the social queries. JSON <-> GraphService.

Follow/Unfollow go to graph api-write, the queries to api-read; "me" is always the user of the
validated access token, never a body or query field. JSON shapes (see also openapi_graph.py):

- a follow: {follower_user_id, followee_user_id, created_at}
- a friend's rating: {user_id, rating, rated_at}
- a similar user: {user_id, similarity, common_work_count, shared_genres}
- a recommendation: {work_id, score, recommended_by: [user ids], genres}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from culture.graph.v1 import graph_pb2
from culture_gateway.errors import HttpError, single_params

if TYPE_CHECKING:
    from culture_gateway.app import Gateway


def _time(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def follow_json(f: graph_pb2.Follow) -> dict[str, Any]:
    return {"follower_user_id": f.follower_user_id, "followee_user_id": f.followee_user_id,
            "created_at": _time(f.create_time)}


class GraphRoutes:
    """The graph routes, bound to a Gateway (its upstreams, settings and auth)."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway

    @property
    def _timeout(self) -> float:
        return self.g.settings.rpc_timeout_seconds

    @staticmethod
    def _int_param(request: Request, name: str, low: int, high: int) -> int:
        given = request.query_params.getlist(name)
        if not given:
            return 0
        raw = given[0]
        if len(given) > 1 or not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
            raise HttpError(422, "INVALID_ARGUMENT", f"bad {name}",
                            {name: f"must be one whole number {low}-{high}"})
        return int(raw)

    def _page(self, request: Request) -> dict[str, Any]:
        single_params(request, "page_token")
        return {"page_size": self._int_param(request, "page_size", 0, 10_000),
                "page_token": request.query_params.get("page_token", "")}

    async def follow(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.graph_write.Follow(
            graph_pb2.FollowRequest(follower_user_id=claims.user_id,
                                    followee_user_id=request.path_params["user_id"]), timeout=self._timeout)
        return JSONResponse({"follow": follow_json(reply.follow), "created": reply.created},
                            status_code=201 if reply.created else 200)

    async def unfollow(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.graph_write.Unfollow(
            graph_pb2.UnfollowRequest(follower_user_id=claims.user_id,
                                      followee_user_id=request.path_params["user_id"]), timeout=self._timeout)
        return JSONResponse({"removed": reply.removed})

    async def followers(self, request: Request) -> Response:
        reply = await self.g.up.graph_read.ListFollowers(
            graph_pb2.ListFollowersRequest(user_id=request.path_params["user_id"], **self._page(request)),
            timeout=self._timeout)
        return JSONResponse({"follows": [follow_json(f) for f in reply.follows],
                             "next_page_token": reply.next_page_token})

    async def following(self, request: Request) -> Response:
        reply = await self.g.up.graph_read.ListFollowing(
            graph_pb2.ListFollowingRequest(user_id=request.path_params["user_id"], **self._page(request)),
            timeout=self._timeout)
        return JSONResponse({"follows": [follow_json(f) for f in reply.follows],
                             "next_page_token": reply.next_page_token})

    async def friends_who_liked(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.graph_read.FriendsWhoLiked(
            graph_pb2.FriendsWhoLikedRequest(user_id=claims.user_id, work_id=request.path_params["work_id"],
                                             min_rating=self._int_param(request, "min_rating", 0, 5),
                                             **self._page(request)), timeout=self._timeout)
        return JSONResponse({
            "ratings": [{"user_id": r.user_id, "rating": r.rating, "rated_at": _time(r.rate_time)}
                        for r in reply.ratings],
            "next_page_token": reply.next_page_token})

    async def similar(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.graph_read.SimilarTastes(
            graph_pb2.SimilarTastesRequest(user_id=claims.user_id, **self._page(request)),
            timeout=self._timeout)
        return JSONResponse({
            "users": [{"user_id": u.user_id, "similarity": u.similarity,
                       "common_work_count": u.common_work_count,
                       "shared_genres": list(u.shared_genre_slugs)}
                      for u in reply.users],
            "next_page_token": reply.next_page_token})

    async def recommendations(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.graph_read.Recommend(
            graph_pb2.RecommendRequest(user_id=claims.user_id,
                                       genre_slugs=request.query_params.getlist("genre"),
                                       min_rating=self._int_param(request, "min_rating", 0, 5),
                                       **self._page(request)), timeout=self._timeout)
        return JSONResponse({
            "recommendations": [{"work_id": r.work_id, "score": r.score,
                                 "recommended_by": list(r.recommender_user_ids),
                                 "genres": list(r.genre_slugs)}
                                for r in reply.recommendations],
            "next_page_token": reply.next_page_token})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/users/{user_id}/follow", self.follow, methods=["PUT"]),
            Route("/api/users/{user_id}/follow", self.unfollow, methods=["DELETE"]),
            Route("/api/users/{user_id}/followers", self.followers, methods=["GET"]),
            Route("/api/users/{user_id}/following", self.following, methods=["GET"]),
            Route("/api/works/{work_id}/friends-who-liked", self.friends_who_liked, methods=["GET"]),
            Route("/api/me/similar", self.similar, methods=["GET"]),
            Route("/api/me/recommendations", self.recommendations, methods=["GET"]),
        ]
