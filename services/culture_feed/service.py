"""FeedService over gRPC (api-read): GetFeed, newest first, merging in the reviews of the
celebrities the reader follows."""

from __future__ import annotations

import time
import uuid

import grpc
from google.protobuf import timestamp_pb2

from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture_feed import model
from culture_feed.settings import FeedSettings
from culture_feed.store import FeedStore
from culture_grpc.errors import invalid_argument, not_found

MAX_ID = 128
#: rows read beyond a page: the previous page's last item (and any item of the very same 100 ns)
_SLACK = 4
_NEWEST = model.bound_id((1 << 60) - 1)


def check_request(request: feed_pb2.GetFeedRequest) -> list[tuple[str, str]]:
    """The contract's rules for GetFeedRequest (pure)."""
    out: list[tuple[str, str]] = []
    user = request.user_id
    if not user.strip():
        out.append(("user_id", "required"))
    elif len(user) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in user):
        out.append(("user_id", f"at most {MAX_ID} characters, no control characters"))
    if request.page_size < 0:
        out.append(("page_size", "must not be negative"))
    if len(request.page_token) > 500:
        out.append(("page_token", "not a page token of this feed"))
    return out


def to_proto(item: model.Item) -> feed_pb2.FeedItem:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(model.time_of(item.item_id))
    return feed_pb2.FeedItem(
        item_id=str(item.item_id), create_time=ts, actor_user_id=item.actor_user_id,
        review=feed_pb2.ReviewActivity(review_id=item.review_id, work_id=item.work_id,
                                       work_title=item.work_title, rating=item.rating, excerpt=item.excerpt,
                                       genre_slugs=list(item.genre_slugs)))


class FeedReader(feed_pb2_grpc.FeedServiceServicer):
    """GetFeed: the reader's timeline partitions, bucket after bucket, merged with the recent
    reviews of the celebrities they follow (re-keyed to the ids a copy would have had)."""

    def __init__(self, store: FeedStore, settings: FeedSettings) -> None:
        self.store, self.settings = store, settings
        self._celebrities: tuple[float, set[str]] = (0.0, set())

    async def celebrities(self) -> set[str]:
        fetched, names = self._celebrities
        if time.monotonic() - fetched > self.settings.celebrity_cache_seconds:
            names = await self.store.celebrities()
            self._celebrities = (time.monotonic(), names)
        return names

    async def page(self, user_id: str, limit: int, after: uuid.UUID | None) -> tuple[list[model.Item], bool]:
        """The page of `limit` items older than `after` and whether more remain."""
        upper = model.bound_id(after.time) if after is not None else _NEWEST
        want = limit + 1 + _SLACK
        sources = [await self.store.timeline(user_id, upper, want)]
        celebrities = await self.celebrities()
        if celebrities:
            for author in sorted(celebrities & await self.store.following(user_id)):
                merged = [model.Item(**{**a.item.__dict__, "item_id": model.item_id(
                    model.time_of(a.item.item_id), a.source_event_id, user_id)})
                    for a in await self.store.authored_items(author, upper, want)]
                sources.append(merged)
        return model.merge_page(sources, limit, after)

    async def GetFeed(self, request: feed_pb2.GetFeedRequest,
                      context: grpc.aio.ServicerContext) -> feed_pb2.GetFeedResponse:
        violations = check_request(request)
        if violations:
            raise invalid_argument(violations)
        try:
            after = model.decode_token(request.page_token)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        items, more = await self.page(request.user_id, model.page_size(request.page_size), after)
        if not items and after is None and not await self.store.feed_exists(request.user_id):
            raise not_found("feed", request.user_id)
        return feed_pb2.GetFeedResponse(items=[to_proto(i) for i in items],
                                        next_page_token=model.encode_token(items[-1].item_id) if more else "")
