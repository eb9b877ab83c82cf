"""FeedService over gRPC (api-read): GetFeed, newest first, merging in the reviews of the
celebrities the reader follows."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid

import grpc
from google.protobuf import timestamp_pb2

from culture.feed.v1 import feed_pb2, feed_pb2_grpc
from culture_feed import model
from culture_feed.settings import FeedSettings
from culture_feed.store import FeedStore
from culture_grpc.errors import invalid_argument, not_found

log = logging.getLogger("culture_feed")

#: rows read beyond a page: the previous page's last item (and any item of the very same 100 ns)
_SLACK = 4
_NEWEST = model.bound_id((1 << 60) - 1)


def to_proto(item: model.Item) -> feed_pb2.FeedItem:
    seconds, micros = divmod(model.unix_micros(item.item_id), 1_000_000)
    return feed_pb2.FeedItem(
        item_id=str(item.item_id), create_time=timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000),
        actor_user_id=item.actor_user_id,
        review=feed_pb2.ReviewActivity(review_id=item.review_id, work_id=item.work_id,
                                       work_title=item.work_title, rating=item.rating, excerpt=item.excerpt,
                                       genre_slugs=list(item.genre_slugs)))


class FeedReader(feed_pb2_grpc.FeedServiceServicer):
    """GetFeed: the reader's timeline partitions, bucket after bucket, merged with the recent
    reviews of the celebrities they follow (re-keyed to the ids a copy would have had)."""

    def __init__(self, store: FeedStore, settings: FeedSettings) -> None:
        self.store, self.settings = store, settings
        self._celebrities: tuple[float, set[str]] | None = None
        self._refresh: asyncio.Future[None] | None = None

    async def celebrities(self) -> set[str]:
        """The celebrities, cached for celebrity_cache_seconds. Once known, an expired set is served
        while one background read fetches the new one: no page waits for it (with a cache of 0 s,
        every page reads it)."""
        if self._celebrities is None or not self.settings.celebrity_cache_seconds:
            await self._fetch_celebrities()
        elif time.monotonic() - self._celebrities[0] > self.settings.celebrity_cache_seconds and (
                self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.ensure_future(self._fetch_celebrities(background=True))
        assert self._celebrities is not None
        return self._celebrities[1]

    async def _fetch_celebrities(self, background: bool = False) -> None:
        try:
            self._celebrities = (time.monotonic(), await self.store.celebrities())
        except Exception as exc:
            if not background:
                raise
            log.warning("feed: could not refresh the celebrities (%s); the last set serves", exc)

    async def page(self, user_id: str, limit: int, after: uuid.UUID | None) -> tuple[list[model.Item], bool]:
        """The page of `limit` items older than `after` and whether more remain."""
        upper = model.bound_id(after.time) if after is not None else _NEWEST
        want = limit + 1 + _SLACK
        celebrities = await self.celebrities()
        if not celebrities:  # nobody to merge in: the timeline alone
            return model.merge_page([await self.store.timeline(user_id, upper, want)], limit, after)
        # the timeline and whom the reader follows at the same time, then each followed celebrity's
        # reviews at the same time
        own, followed = await asyncio.gather(self.store.timeline(user_id, upper, want),
                                             self.store.following(user_id))
        authors = sorted(celebrities & followed)
        reviews = await asyncio.gather(*(self.store.authored_items(a, upper, want) for a in authors))
        merged = [[dataclasses.replace(a.item, item_id=model.item_id(model.time_of(a.item.item_id),
                                                                      a.source_event_id, user_id))
                   for a in authored] for authored in reviews]
        return model.merge_page([own, *merged], limit, after)

    async def GetFeed(self, request: feed_pb2.GetFeedRequest,
                      context: grpc.aio.ServicerContext) -> feed_pb2.GetFeedResponse:
        # the request's shape (user id, page size, token length) is the contract's: checked by
        # culture_grpc's ValidationInterceptor before this runs
        try:
            after = model.decode_token(request.page_token)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        items, more = await self.page(request.user_id, model.page_size(request.page_size), after)
        if not items and after is None and not await self.store.feed_exists(request.user_id):
            raise not_found("feed", request.user_id)
        return feed_pb2.GetFeedResponse(items=[to_proto(i) for i in items],
                                        next_page_token=model.encode_token(items[-1].item_id) if more else "")
