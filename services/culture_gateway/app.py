"""The gateway's ASGI app: routes, JSON bodies, auth, gRPC error mapping, long polling, SSE, WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from culture.identity.v1 import identity_pb2
from culture.notifier.v1 import notifier_pb2
from culture_events import correlation
from culture_gateway import jobs
from culture_gateway.errors import error_body, grpc_error_response
from culture_gateway.openapi import openapi_spec
from culture_gateway.routes_catalog import CatalogRoutes
from culture_gateway.settings import GatewaySettings
from culture_gateway.upstreams import Upstreams
from culture_grpc.errors import field_violations_of, status_details_of
from culture_grpc.interceptors import CORRELATION_ID_KEY

log = logging.getLogger("culture_gateway")

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_JOB_ID = _CORRELATION
#: how a subscription waits for a job the notifier has not recorded yet (it may be seconds behind)
_UNKNOWN_JOB_RETRY = 0.25

PushSubscribe = Callable[[str, str], AsyncIterator[dict[str, Any]]]


class HttpError(Exception):
    """An error answered as JSON with the given HTTP status."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}


def _user_json(user: identity_pb2.User) -> dict[str, Any]:
    return {"user_id": user.user_id, "username": user.username, "email": user.email,
            "display_name": user.display_name,
            "created_at": user.create_time.ToDatetime().isoformat(timespec="seconds") + "Z"}


def _tokens_json(pair: identity_pb2.TokenPair) -> dict[str, Any]:
    return {"token_type": "Bearer", "access_token": pair.access_token,
            "access_token_expires_at": pair.access_token_expire_time.ToDatetime().isoformat() + "Z",
            "refresh_token": pair.refresh_token,
            "refresh_token_expires_at": pair.refresh_token_expire_time.ToDatetime().isoformat() + "Z"}


class CorrelationMiddleware:
    """Binds the request's correlation id (X-Correlation-Id, or a new one) for every upstream call
    made while serving it, and echoes it in the response. For POST /api/register it becomes the
    job id, so a browser may choose it up front and subscribe to the job before registering."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        given = headers.get(CORRELATION_HEADER.encode(), b"").decode(errors="replace")
        value = given if _CORRELATION.match(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (CORRELATION_HEADER.encode(), value.encode())]
            await send(message)

        with correlation.bound(value):
            await self.app(scope, receive, send_with_id)


class Gateway:
    """The routes, bound to the upstream channels and settings."""

    def __init__(self, settings: GatewaySettings, upstreams: Upstreams, redis_url: str,
                 push_subscribe: PushSubscribe | None = None) -> None:
        self.settings = settings
        self.up = upstreams
        self.redis_url = redis_url
        self._push_subscribe = push_subscribe
        self.draining = False
        self.closing = asyncio.Event()

    # -- plumbing ---------------------------------------------------------------------------------

    def _client_ip(self, conn: HTTPConnection) -> str:
        if self.settings.trust_forwarded_for and (fwd := conn.headers.get("x-forwarded-for")):
            return fwd.split(",")[0].strip()
        return conn.client.host if conn.client else "unknown"

    async def _json_body(self, request: Request) -> dict[str, Any]:
        limit = self.settings.max_body_bytes
        too_large = HttpError(413, "PAYLOAD_TOO_LARGE", f"the body is larger than the limit of {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:  # a chunked body has no Content-Length to check up front
                raise too_large
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HttpError(400, "INVALID_JSON", f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HttpError(400, "INVALID_JSON", "the body must be a JSON object")
        return data

    @staticmethod
    def _strings(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
        """The named fields as strings (missing -> ""); a 422 naming each field of another type."""
        wrong = {n: "must be a string" for n in names if n in data and not isinstance(data[n], str)}
        if wrong:
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields", wrong)
        return {n: data.get(n, "") for n in names}

    def _metadata(self, conn: HTTPConnection) -> tuple[tuple[str, str], ...]:
        return (("x-client-ip", self._client_ip(conn)),)

    @staticmethod
    def _token_of(conn: HTTPConnection) -> str | None:
        auth = conn.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        # EventSource and WebSocket cannot set headers: a query parameter is the usual fallback
        return conn.query_params.get("access_token") or None

    async def _authenticate(self, conn: HTTPConnection) -> identity_pb2.ValidateTokenResponse:
        token = self._token_of(conn)
        if token is None:
            raise HttpError(401, "UNAUTHENTICATED", "an access token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": 'Bearer realm="culture"'})
        return await self.up.identity_read.ValidateToken(
            identity_pb2.ValidateTokenRequest(access_token=token), timeout=self.settings.rpc_timeout_seconds)

    # -- routes -----------------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        names = ("username", "email", "password", "display_name")
        fields = self._strings(await self._json_body(request), names)
        reply = await self.up.identity_write.Register(
            identity_pb2.RegisterRequest(**fields), timeout=self.settings.rpc_timeout_seconds,
            metadata=self._metadata(request))
        status_url = f"/status/{reply.job_id}"
        body = {"user": _user_json(reply.user), "job_id": reply.job_id, "status_url": status_url}
        return JSONResponse(body, status_code=201, headers={"Location": status_url})

    async def login(self, request: Request) -> Response:
        fields = self._strings(await self._json_body(request), ("login", "password"))
        reply = await self.up.identity_write.Login(
            identity_pb2.LoginRequest(**fields), timeout=self.settings.rpc_timeout_seconds,
            metadata=self._metadata(request))
        return JSONResponse({**_tokens_json(reply.tokens), "user": _user_json(reply.user)})

    async def refresh(self, request: Request) -> Response:
        fields = self._strings(await self._json_body(request), ("refresh_token",))
        reply = await self.up.identity_write.Refresh(
            identity_pb2.RefreshRequest(**fields), timeout=self.settings.rpc_timeout_seconds,
            metadata=self._metadata(request))
        return JSONResponse(_tokens_json(reply.tokens))

    async def me(self, request: Request) -> Response:
        claims = await self._authenticate(request)
        reply = await self.up.identity_read.GetUser(identity_pb2.GetUserRequest(user_id=claims.user_id),
                                                    timeout=self.settings.rpc_timeout_seconds)
        return JSONResponse({"user": _user_json(reply.user)})

    async def status(self, request: Request) -> Response:
        """The job's state; with ?wait=N, waits up to N seconds for it to differ from ?after= (the
        `updated_at` the client saw last), or for the job to appear."""
        job_id = self._job_id(request.path_params["job_id"])
        wait = self._wait_seconds(request.query_params.get("wait", "0"))
        after = request.query_params.get("after")
        deadline = time.monotonic() + wait
        job: dict[str, Any] | None = None
        async with contextlib.aclosing(self._job_snapshots(job_id, deadline)) as snapshots:
            async for job in snapshots:
                if jobs.is_terminal(job) or after is None or job["updated_at"] != after:
                    break
        if job is None:
            raise HttpError(404, "NOT_FOUND", f"no job {job_id!r} (unknown, not started yet, or expired)")
        return JSONResponse(job)

    def _job_id(self, value: str) -> str:
        if not _JOB_ID.match(value):
            raise HttpError(422, "INVALID_ARGUMENT", "not a job id",
                            {"job_id": "must be 8-64 characters of [A-Za-z0-9_-]"})
        return value

    def _wait_seconds(self, raw: str) -> float:
        try:
            wait = float(raw)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= self.settings.long_poll_max_seconds:
            limit = self.settings.long_poll_max_seconds
            raise HttpError(422, "INVALID_ARGUMENT", "bad wait",
                            {"wait": f"must be a number of seconds from 0 to {limit:g}"})
        return wait

    async def _job_snapshots(self, job_id: str, deadline: float | None) -> AsyncIterator[dict[str, Any]]:
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

    async def _job_updates(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """Step changes of one job, ending after the terminal state."""
        previous: dict[str, Any] | None = None
        async for job in self._job_snapshots(job_id, None):
            for change in jobs.step_changes(previous, job):
                yield change
            previous = job
            if jobs.is_terminal(job):
                yield {"job_id": job_id, "job_state": job["state"], "done": True}
                return

    def _user_updates(self, user_id: str) -> AsyncIterator[dict[str, Any]]:
        subscribe = self._push_subscribe
        if subscribe is None:
            try:
                from culture_notifier.push import subscribe  # the notifier's push channel (Redis pub/sub)
            except ImportError as exc:
                raise HttpError(503, "UNAVAILABLE", "push notifications are not available") from exc
        return subscribe(self.redis_url, user_id)

    async def _updates_for(self, conn: HTTPConnection) -> tuple[str, AsyncIterator[dict[str, Any]]]:
        """What to push: one job's steps (?job_id=, the id is the capability: the registering
        browser has no token yet), else every job update of the logged-in user."""
        job_id = conn.query_params.get("job_id")
        if job_id:
            return f"job {self._job_id(job_id)}", self._job_updates(job_id)
        claims = await self._authenticate(conn)
        return f"user {claims.user_id}", self._user_updates(claims.user_id)

    async def _pump(self, source: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any] | None]:
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
        what, source = await self._updates_for(request)

        async def stream() -> AsyncIterator[str]:
            yield f"event: ready\ndata: {json.dumps({'subscribed': what})}\n\n"
            try:
                async for item in self._pump(source):
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

    async def websocket(self, ws: WebSocket) -> None:
        try:
            what, source = await self._updates_for(ws)
        except (HttpError, grpc.aio.AioRpcError) as exc:
            reason = exc.message if isinstance(exc, HttpError) else "access token invalid or expired"
            await ws.close(code=1008, reason=reason[:120])  # before accept(): the handshake gets 403
            return
        await ws.accept()
        await ws.send_json({"type": "ready", "subscribed": what})

        async def until_client_leaves() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await ws.receive_text()

        watcher = asyncio.ensure_future(until_client_leaves())
        try:
            async for item in self._pump(source):
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

    async def healthz(self, request: Request) -> Response:
        ready = self.up.ready and not self.draining
        body = {"status": "draining" if self.draining else ("ready" if ready else "not ready"),
                "upstreams": dict(self.up.health), "required": self.settings.required_upstreams}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_spec())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return JSONResponse(error_body(exc.code, exc.message, exc.fields, correlation_id=correlation.current()),
                        status_code=exc.status, headers=exc.headers)


async def _grpc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    retry = status_details_of(exc, error_details_pb2.RetryInfo)
    retry_after = retry[0].retry_delay.seconds if retry else None
    trailing = dict(exc.trailing_metadata() or ())
    status, body, headers = grpc_error_response(
        exc.code(), exc.details() or "", field_violations_of(exc), retry_after,
        str(trailing.get(CORRELATION_ID_KEY) or correlation.current()))
    if status >= 500:
        log.warning("gateway: upstream failed on %s %s: %s %s", request.method, request.url.path,
                    exc.code().name, exc.details())
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(gateway: Gateway, lifespan: Any = None) -> ASGIApp:
    """The ASGI app for a Gateway."""
    routes = [
        Route("/api/register", gateway.register, methods=["POST"]),
        Route("/api/login", gateway.login, methods=["POST"]),
        Route("/api/refresh", gateway.refresh, methods=["POST"]),
        Route("/api/me", gateway.me, methods=["GET"]),
        Route("/status/{job_id}", gateway.status, methods=["GET"]),
        Route("/events", gateway.events, methods=["GET"]),
        WebSocketRoute("/ws", gateway.websocket),
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/openapi.json", gateway.openapi, methods=["GET"]),
        *CatalogRoutes(gateway).routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HttpError: _http_error, grpc.aio.AioRpcError: _grpc_error})
    return CorrelationMiddleware(app)
