"""The gateway's push machinery: a job's state as it changes (WatchJob streams, the long poll of
/status), a user's job updates (the notifier's push channel), and their delivery over server-sent
events and WebSocket with heartbeats; every stream ends when the gateway starts draining."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from culture.identity.v1 import identity_pb2
from culture.notifier.v1 import notifier_pb2
from culture_gateway import jobs
from culture_gateway.errors import HttpError
from culture_gateway.settings import GatewaySettings
from culture_gateway.upstreams import Upstreams

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: how a subscription waits for a job the notifier has not recorded yet (it may be seconds behind)
_UNKNOWN_JOB_RETRY = 0.25

PushSubscribe = Callable[[str, str], AsyncIterator[dict[str, Any]]]
Authenticate = Callable[[HTTPConnection], Awaitable[identity_pb2.ValidateTokenResponse]]


def check_job_id(value: str) -> str:
    """`value` when it is a well-formed job id; else a 422 naming the field."""
    if not _JOB_ID.match(value):
        raise HttpError(422, "INVALID_ARGUMENT", "not a job id",
                        {"job_id": "must be 8-64 characters of [A-Za-z0-9_-]"})
    return value


class Push:
    """Job and user updates for the routes: snapshots for /status, streams for /events and /ws.

    `authenticate` checks a connection's access token (the gateway's, via identity); `closing` is set
    when the gateway drains, which ends every stream.
    """

    def __init__(self, settings: GatewaySettings, upstreams: Upstreams, redis_url: str,
                 authenticate: Authenticate, push_subscribe: PushSubscribe | None = None,
                 closing: asyncio.Event | None = None) -> None:
        self.settings = settings
        self.up = upstreams
        self.redis_url = redis_url
        self._authenticate = authenticate
        self._push_subscribe = push_subscribe
        self.closing = closing or asyncio.Event()
        #: the chat's hub (culture_gateway.chat.ChatHub) when this installation runs the chat
        self.chat: Any = None

    async def job_snapshots(self, job_id: str, deadline: float | None) -> AsyncIterator[dict[str, Any]]:
        """The job's state, then each change (WatchJob), until terminal or the deadline (None: no
        deadline). A job the notifier does not know yet is waited for; when the deadline passes
        before any snapshot, nothing is yielded."""
        backoff, seen = _UNKNOWN_JOB_RETRY, False
        while not self.closing.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if not seen:  # wait=0, or the job never showed up: one plain read decides
                    try:
                        reply = await self.up.notifier.GetJobStatus(
                            notifier_pb2.GetJobStatusRequest(job_id=job_id),
                            timeout=self.settings.rpc_timeout_seconds)
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.NOT_FOUND:
                            raise
                    else:
                        yield jobs.job_json(reply.job)
                return
            call = self.up.notifier.WatchJob(notifier_pb2.WatchJobRequest(job_id=job_id), timeout=remaining)
            try:
                async for reply in call:
                    seen = True
                    yield jobs.job_json(reply.job)
                    backoff = _UNKNOWN_JOB_RETRY
                return  # the stream ends after the job is terminal
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    raise
            finally:
                call.cancel()
            pause = backoff if deadline is None else min(backoff, max(deadline - time.monotonic(), 0))
            await asyncio.sleep(pause)
            backoff = min(backoff * 2, 2.0)

    async def job_updates(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """Step changes of one job, ending after the terminal state."""
        previous: dict[str, Any] | None = None
        async for job in self.job_snapshots(job_id, None):
            for change in jobs.step_changes(previous, job):
                yield change
            previous = job
            if jobs.is_terminal(job):
                yield {"job_id": job_id, "job_state": job["state"], "done": True}
                return

    def user_updates(self, user_id: str) -> AsyncIterator[dict[str, Any]]:
        subscribe = self._push_subscribe
        if subscribe is None:
            try:
                from culture_notifier.push import subscribe  # the notifier's push channel (Redis pub/sub)
            except ImportError as exc:
                raise HttpError(503, "UNAVAILABLE", "push notifications are not available") from exc
        return subscribe(self.redis_url, user_id)

    async def updates_for(self, conn: HTTPConnection) -> tuple[str, AsyncIterator[dict[str, Any]]]:
        """What to push: one job's steps (?job_id=, the id is the capability: the registering
        browser has no token yet), else every job update of the logged-in user."""
        what, source, _ = await self._updates_and_user(conn)
        return what, source

    async def _updates_and_user(self, conn: HTTPConnection) -> tuple[str, AsyncIterator[dict[str, Any]],
                                                                      str | None]:
        job_id = conn.query_params.get("job_id")
        if job_id:
            return f"job {check_job_id(job_id)}", self.job_updates(job_id), None
        claims = await self._authenticate(conn)
        return f"user {claims.user_id}", self.user_updates(claims.user_id), claims.user_id

    async def pump(self, source: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any] | None]:
        """The source's updates, with None as a heartbeat every heartbeat_seconds of silence.

        A task feeds a queue so a heartbeat never cancels the source mid-read."""
        queue: asyncio.Queue[dict[str, Any] | BaseException | object] = asyncio.Queue(maxsize=256)
        end = object()

        async def feed() -> None:
            try:
                async for item in source:
                    await queue.put(item)
                await queue.put(end)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports it
                await queue.put(exc)

        task = asyncio.ensure_future(feed())
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closing}, timeout=self.settings.heartbeat_seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if closing in done:
                        return
                    yield None
                    continue
                item = getter.result()
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            closing.cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def events(self, request: Request) -> Response:
        """Server-sent events: `ready`, then `step`s (and `: keep-alive`s), then `done`."""
        what, source = await self.updates_for(request)

        async def stream() -> AsyncIterator[str]:
            yield f"event: ready\ndata: {json.dumps({'subscribed': what})}\n\n"
            try:
                async for item in self.pump(source):
                    if item is None:
                        yield ": keep-alive\n\n"
                    elif item.get("done"):
                        yield f"event: done\ndata: {json.dumps(item)}\n\n"
                    else:
                        yield f"event: step\ndata: {json.dumps(item)}\n\n"
            except grpc.aio.AioRpcError as exc:
                yield f"event: error\ndata: {json.dumps({'status': exc.code().name})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _chat_badge(self, user_id: str) -> int:
        """The messages that reached the user since their last connection (the notifier's badge,
        reset now); 0 when the notifier cannot tell (best effort: history has the messages)."""
        try:
            reply = await self.up.notifier.GetChatBadge(
                notifier_pb2.GetChatBadgeRequest(user_id=user_id, reset=True), timeout=2.0)
        except grpc.aio.AioRpcError:
            return 0
        return int(reply.unread_count)

    async def websocket(self, ws: WebSocket) -> None:
        """The same updates as JSON messages over a WebSocket (`ready`, `step`, `ping`, `done`); a
        logged-in user's socket also carries the chat frames (culture_gateway.chat, docs/chat.md)."""
        try:
            what, source, user_id = await self._updates_and_user(ws)
        except (HttpError, grpc.aio.AioRpcError) as exc:
            reason = exc.message if isinstance(exc, HttpError) else "access token invalid or expired"
            await ws.close(code=1008, reason=reason[:120])  # before accept(): the handshake gets 403
            return
        await ws.accept()
        if user_id is not None and self.chat is not None:
            from culture_gateway.chat import ChatSession

            ready = {"type": "ready", "subscribed": what,
                     "chat": {"presence_ttl_seconds": self.settings.presence_ttl_seconds,
                              "unread_badge": await self._chat_badge(user_id)}}
            first: list[AsyncIterator[dict[str, Any]]] = [source]

            def updates() -> AsyncIterator[dict[str, Any] | None]:
                return self.pump(first.pop() if first else self.user_updates(user_id))

            await ChatSession(self.chat, ws, user_id).run(updates, self.closing, ready)
            return
        await ws.send_json({"type": "ready", "subscribed": what})

        async def until_client_leaves() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await ws.receive_text()

        watcher = asyncio.ensure_future(until_client_leaves())
        try:
            async for item in self.pump(source):
                if watcher.done():
                    break
                if item is None:
                    await ws.send_json({"type": "ping"})
                else:
                    await ws.send_json({"type": "done" if item.get("done") else "step", **item})
            with contextlib.suppress(Exception):
                await ws.close()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            watcher.cancel()
