"""NotifierService over gRPC: GetJobStatus and WatchJob (a server stream of snapshots).

The job id's form is a rule of the contract (checked by culture_grpc's ValidationInterceptor)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import grpc

from culture.notifier.v1 import notifier_pb2, notifier_pb2_grpc
from culture_grpc.errors import not_found
from culture_notifier.badges import ChatBadges
from culture_notifier.jobs import is_terminal, to_proto
from culture_notifier.store import JobStore, job_channel


class NotifierServicer(notifier_pb2_grpc.NotifierServiceServicer):
    """Reads jobs from Redis; watches them through their pub/sub channel."""

    def __init__(self, store: JobStore, watch_max_seconds: float, badges: ChatBadges | None = None) -> None:
        self.store = store
        self.watch_max_seconds = watch_max_seconds
        self.badges = badges or ChatBadges(store.redis)

    async def GetChatBadge(self, request: notifier_pb2.GetChatBadgeRequest,
                           context: grpc.aio.ServicerContext) -> notifier_pb2.GetChatBadgeResponse:
        count, conversations = await self.badges.read(request.user_id, request.reset)
        return notifier_pb2.GetChatBadgeResponse(unread_count=count, conversation_ids=conversations)

    async def GetJobStatus(self, request: notifier_pb2.GetJobStatusRequest,
                           context: grpc.aio.ServicerContext) -> notifier_pb2.GetJobStatusResponse:
        snap = await self.store.get(request.job_id)
        if snap is None:
            raise not_found("job", request.job_id)
        return notifier_pb2.GetJobStatusResponse(job=to_proto(snap))

    async def WatchJob(self, request: notifier_pb2.WatchJobRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[notifier_pb2.WatchJobResponse]:
        """The current state (as soon as the job is known), then every change, until it is terminal.

        A job not known yet is waited for: the command that returned the job id answers before the
        first event of the job reaches the notifier. The stream is bounded by watch_max_seconds.
        """
        pubsub = self.store.redis.pubsub()
        try:
            # subscribe first, then read: no change can fall between the snapshot and the stream
            await pubsub.subscribe(job_channel(request.job_id))
            version = 0
            snap = await self.store.get(request.job_id)
            if snap is not None:
                version = snap["version"]
                yield notifier_pb2.WatchJobResponse(job=to_proto(snap))
                if is_terminal(snap["job_state"]):
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.watch_max_seconds):
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        update = json.loads(item["data"])
                        if update["version"] <= version:
                            continue
                        version = update["version"]
                        yield notifier_pb2.WatchJobResponse(job=to_proto(update))
                        if is_terminal(update["job_state"]):
                            return
        finally:
            await pubsub.aclose()



