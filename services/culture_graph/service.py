"""GraphService over gRPC: GraphWriter (api-write: Follow, Unfollow) and GraphReader (api-read: the
queries). Each answers UNIMPLEMENTED for the other role's RPCs (the generated base class).

The requests' shapes (ids, genre paths, ratings, page sizes and tokens) are the contract's rules
(buf.validate annotations in proto/culture/graph/v1/graph.proto), checked by culture_grpc's
ValidationInterceptor before a servicer runs; the servicers check only what an annotation cannot
say about one field (a user following themselves, a page token this service did not issue)."""

from __future__ import annotations

from typing import Any

import grpc

from culture.graph.v1 import graph_pb2, graph_pb2_grpc
from culture_graph import model
from culture_graph.settings import GraphSettings
from culture_graph.store import (
    FOLLOWERS,
    FOLLOWERS_INTERESTED_IN,
    FOLLOWING,
    FRIENDS_WHO_LIKED,
    MY_TASTE,
    RECOMMEND,
    SHARED_GENRES,
    SIMILAR,
    GraphStore,
)
from culture_grpc.errors import invalid_argument, not_found


def _not_self(follower: str, followee: str) -> None:
    if follower == followee:
        raise invalid_argument({"followee_user_id": "a user cannot follow themselves"})


def _follow(row: dict[str, Any]) -> graph_pb2.Follow:
    return graph_pb2.Follow(follower_user_id=row["follower"], followee_user_id=row["followee"],
                            create_time=model.to_timestamp(row["at"]))


class GraphWriter(graph_pb2_grpc.GraphServiceServicer):
    """The commands (api-write). The edge and its event commit in one Neo4j transaction."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    async def Follow(self, request: graph_pb2.FollowRequest,
                     context: grpc.aio.ServicerContext) -> graph_pb2.FollowResponse:
        _not_self(request.follower_user_id, request.followee_user_id)
        at, created = await self.store.follow(request.follower_user_id, request.followee_user_id)
        return graph_pb2.FollowResponse(
            follow=graph_pb2.Follow(follower_user_id=request.follower_user_id,
                                    followee_user_id=request.followee_user_id,
                                    create_time=model.to_timestamp(at)),
            created=created)

    async def Unfollow(self, request: graph_pb2.UnfollowRequest,
                       context: grpc.aio.ServicerContext) -> graph_pb2.UnfollowResponse:
        _not_self(request.follower_user_id, request.followee_user_id)
        removed = await self.store.unfollow(request.follower_user_id, request.followee_user_id)
        return graph_pb2.UnfollowResponse(removed=removed)


class GraphReader(graph_pb2_grpc.GraphServiceServicer):
    """The queries (api-read)."""

    def __init__(self, store: GraphStore, settings: GraphSettings) -> None:
        self.store = store
        self.settings = settings

    async def _known(self, user_id: str, rows: list[Any], token: str) -> None:
        """NOT_FOUND for an unknown user (checked only when a first page came back empty)."""
        if not rows and not token and not await self.store.user_exists(user_id):
            raise not_found("user", user_id)

    async def _follow_page(self, kind: str, cypher: str, user_id: str, page_size: int,
                           token: str) -> tuple[list[dict[str, Any]], str]:
        try:
            after = model.key_position(token, kind, [user_id], user_id)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        size = model.page_size(page_size, model.FOLLOWS_PAGE)
        low, high = model.key_range(user_id)
        rows = await self.store.read(cypher, low=low, high=after or high, limit=size + 1)
        await self._known(user_id, rows, token)
        next_token = model.encode_cursor(kind, [user_id], rows[size - 1]["k"]) if len(rows) > size else ""
        return rows[:size], next_token

    async def ListFollowers(self, request: graph_pb2.ListFollowersRequest,
                            context: grpc.aio.ServicerContext) -> graph_pb2.ListFollowersResponse:
        rows, token = await self._follow_page("followers", FOLLOWERS, request.user_id, request.page_size,
                                              request.page_token)
        return graph_pb2.ListFollowersResponse(follows=[_follow(r) for r in rows], next_page_token=token)

    async def ListFollowing(self, request: graph_pb2.ListFollowingRequest,
                            context: grpc.aio.ServicerContext) -> graph_pb2.ListFollowingResponse:
        rows, token = await self._follow_page("following", FOLLOWING, request.user_id, request.page_size,
                                              request.page_token)
        return graph_pb2.ListFollowingResponse(follows=[_follow(r) for r in rows], next_page_token=token)

    async def FollowersInterestedIn(
            self, request: graph_pb2.FollowersInterestedInRequest,
            context: grpc.aio.ServicerContext) -> graph_pb2.FollowersInterestedInResponse:
        genres = list(dict.fromkeys(request.genre_slugs))
        scope = [request.user_id, sorted(genres)]
        try:
            after = model.key_position(request.page_token, "interested", scope, request.user_id)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        size = model.page_size(request.page_size, model.INTERESTED_PAGE)
        low, high = model.key_range(request.user_id)
        (page,) = await self.store.read(FOLLOWERS_INTERESTED_IN, low=low, high=after or high, genres=genres,
                                        limit=size + 1)
        ids, keys = page["ids"], page["keys"]
        await self._known(request.user_id, ids, request.page_token)
        token = model.encode_cursor("interested", scope, keys[size - 1]) if len(ids) > size else ""
        return graph_pb2.FollowersInterestedInResponse(follower_user_ids=ids[:size], next_page_token=token)

    async def FriendsWhoLiked(self, request: graph_pb2.FriendsWhoLikedRequest,
                              context: grpc.aio.ServicerContext) -> graph_pb2.FriendsWhoLikedResponse:
        min_rating = request.min_rating or model.LIKED
        scope = [request.user_id, request.work_id, min_rating]
        after: Any = None
        if request.page_token:
            try:
                after = model.decode_cursor(request.page_token, "friends-liked", scope)
            except model.BadCursor as exc:
                raise invalid_argument({"page_token": str(exc)}) from None
            if not (isinstance(after, list) and len(after) == 3):
                raise invalid_argument({"page_token": "not a page token of this list"})
        size = model.page_size(request.page_size, model.FRIENDS_PAGE)
        rows = await self.store.read(FRIENDS_WHO_LIKED, user_id=request.user_id, work_id=request.work_id,
                                     min_rating=min_rating, after=after, limit=size + 1)
        await self._known(request.user_id, rows, request.page_token)
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = model.encode_cursor("friends-liked", scope, [last["rating"], last["at"], last["user_id"]])
        return graph_pb2.FriendsWhoLikedResponse(
            ratings=[graph_pb2.FriendRating(user_id=r["user_id"], rating=r["rating"],
                                            rate_time=model.to_timestamp(r["at"])) for r in rows[:size]],
            next_page_token=token)

    def _offset(self, token: str, kind: str, scope: list[Any]) -> int:
        try:
            return model.offset_position(token, kind, scope)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None

    async def SimilarTastes(self, request: graph_pb2.SimilarTastesRequest,
                            context: grpc.aio.ServicerContext) -> graph_pb2.SimilarTastesResponse:
        offset = self._offset(request.page_token, "similar", [request.user_id])
        size = model.page_size(request.page_size, model.SIMILAR_PAGE)
        rows = await self.store.read(SIMILAR, user_id=request.user_id,
                                     scale=model.MAX_RATING - model.MIN_RATING,
                                     max_ratings=self.settings.similar_max_ratings, offset=offset,
                                     limit=size + 1)
        await self._known(request.user_id, rows, request.page_token)
        page = rows[:size]
        shared: dict[str, list[str]] = {}
        if page:
            for r in await self.store.read(SHARED_GENRES, user_id=request.user_id,
                                           others=[p["user_id"] for p in page]):
                shared.setdefault(r["user_id"], []).append(r["slug"])
        token = model.encode_cursor("similar", [request.user_id], offset + size) if len(rows) > size else ""
        return graph_pb2.SimilarTastesResponse(
            users=[graph_pb2.SimilarUser(user_id=r["user_id"], similarity=round(r["similarity"], 6),
                                         common_work_count=r["common"],
                                         shared_genre_slugs=shared.get(r["user_id"], [])) for r in page],
            next_page_token=token)

    async def Recommend(self, request: graph_pb2.RecommendRequest,
                        context: grpc.aio.ServicerContext) -> graph_pb2.RecommendResponse:
        requested = sorted(dict.fromkeys(request.genre_slugs))
        min_rating = request.min_rating or model.LIKED
        scope = [request.user_id, min_rating, requested]
        offset = self._offset(request.page_token, "recommend", scope)
        size = model.page_size(request.page_size, model.RECOMMEND_PAGE)
        taste = await self.store.read(MY_TASTE, user_id=request.user_id)
        if not taste:
            raise not_found("user", request.user_id)
        genres = requested or taste[0]["genres"]
        mine = {work_id: rating for work_id, rating in taste[0]["ratings"]}
        rows = await self.store.read(
            RECOMMEND, user_id=request.user_id, min_rating=min_rating, genres=genres, any_genre=not genres,
            mine=mine, scale=model.MAX_RATING - model.MIN_RATING, scale_max=model.MAX_RATING,
            max_people=self.settings.recommend_max_people, offset=offset, limit=size + 1)
        token = model.encode_cursor("recommend", scope, offset + size) if len(rows) > size else ""
        return graph_pb2.RecommendResponse(
            recommendations=[graph_pb2.Recommendation(work_id=r["work_id"], score=round(r["score"], 6),
                                                      recommender_user_ids=r["recommenders"],
                                                      genre_slugs=sorted(r["genres"]))
                             for r in rows[:size]],
            next_page_token=token)
