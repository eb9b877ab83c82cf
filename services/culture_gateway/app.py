"""The gateway's ASGI app: routes, JSON bodies, auth, gRPC error mapping; the push streams (long
polling, SSE, WebSocket) are culture_gateway.push."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any

import grpc
from google.rpc import error_details_pb2
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from culture.identity.v1 import identity_pb2
from culture_events import correlation
from culture_gateway import jobs
from culture_gateway.errors import HttpError, error_body, grpc_error_response
from culture_gateway.openapi import openapi_spec
from culture_gateway.push import Push, PushSubscribe, check_job_id
from culture_gateway.routes_catalog import CatalogRoutes
from culture_gateway.routes_feed import FeedRoutes
from culture_gateway.routes_graph import GraphRoutes
from culture_gateway.settings import GatewaySettings
from culture_gateway.upstreams import Upstreams
from culture_grpc.errors import field_violations_of, status_details_of
from culture_grpc.interceptors import CORRELATION_ID_KEY

log = logging.getLogger("culture_gateway")

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


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
        self.draining = False
        self.closing = asyncio.Event()
        self.push = Push(settings, upstreams, redis_url, self._authenticate, push_subscribe, self.closing)

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
        job_id = check_job_id(request.path_params["job_id"])
        wait = self._wait_seconds(request.query_params.get("wait", "0"))
        after = request.query_params.get("after")
        deadline = time.monotonic() + wait
        job: dict[str, Any] | None = None
        async with contextlib.aclosing(self.push.job_snapshots(job_id, deadline)) as snapshots:
            async for job in snapshots:
                if jobs.is_terminal(job) or after is None or job["updated_at"] != after:
                    break
        if job is None:
            raise HttpError(404, "NOT_FOUND", f"no job {job_id!r} (unknown, not started yet, or expired)")
        return JSONResponse(job)

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
        Route("/events", gateway.push.events, methods=["GET"]),
        WebSocketRoute("/ws", gateway.push.websocket),
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/openapi.json", gateway.openapi, methods=["GET"]),
        *CatalogRoutes(gateway).routes(),
        *GraphRoutes(gateway).routes(),
        *FeedRoutes(gateway).routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HttpError: _http_error, grpc.aio.AioRpcError: _grpc_error})
    return CorrelationMiddleware(app)
