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
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from culture.identity.v1 import identity_pb2
from culture_contracts import client_address
from culture_events import correlation
from culture_gateway import jobs
from culture_gateway.docs import docs_routes
from culture_gateway.errors import (
    HttpError,
    error_body,
    grpc_error_response,
    json_depth_exceeds,
    single_params,
)
from culture_gateway.openapi import openapi_spec
from culture_gateway.push import Push, PushSubscribe, check_job_id
from culture_gateway.routes_catalog import CatalogRoutes
from culture_gateway.routes_chat import ChatRoutes
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
                 push_subscribe: PushSubscribe | None = None,
                 client_address_key: SecretStr | None = None) -> None:
        self.settings = settings
        self.up = upstreams
        key = client_address_key.get_secret_value() if client_address_key is not None else None
        self._address_key = key.encode() if key else None
        self.draining = False
        self.closing = asyncio.Event()
        self.push = Push(settings, upstreams, redis_url, self._authenticate, push_subscribe, self.closing)
        if "chat-read" in upstreams.targets and "chat-write" in upstreams.targets:
            from culture_gateway.chat import ChatHub

            self.push.chat = ChatHub(settings, upstreams, redis_url)

    # -- plumbing ---------------------------------------------------------------------------------

    def _client_ip(self, conn: HTTPConnection) -> str:
        peer = conn.client.host if conn.client else "unknown"
        if not self.settings.trust_forwarded_for:
            return peer
        # the rightmost hop our own proxies did not write: what a client puts further left is not trusted
        return client_address.client_address(",".join(conn.headers.getlist("x-forwarded-for")), peer,
                                             self.settings.trusted_proxies)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json" and not (media_type.startswith("application/")
                                                     and media_type.endswith("+json")):
            raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE",
                            "the body must be JSON (Content-Type: application/json)",
                            headers={"Accept": "application/json"})
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
        depth = self.settings.max_json_depth
        if json_depth_exceeds(bytes(body), depth):  # before parsing: deep nesting is a RecursionError there
            raise HttpError(400, "INVALID_JSON",
                            f"the body nests arrays and objects deeper than {depth} levels")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HttpError(400, "INVALID_JSON", f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HttpError(400, "INVALID_JSON", "the body must be a JSON object")
        try:  # JSON may escape lone UTF-16 surrogates ("\\ud800"), which no protobuf string can hold
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise HttpError(400, "INVALID_JSON", "the body's strings must be valid Unicode") from None
        return data

    @staticmethod
    def _strings(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
        """The named fields as strings (missing -> ""); a 422 naming each field of another type."""
        wrong = {n: "must be a string" for n in names if n in data and not isinstance(data[n], str)}
        if wrong:
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields", wrong)
        return {n: data.get(n, "") for n in names}

    def _metadata(self, conn: HTTPConnection) -> tuple[tuple[str, str], ...]:
        """The client's address, signed so identity can tell it came from the gateway (no key: none
        is sent, and identity limits per gateway pod)."""
        if self._address_key is None:
            return ()
        return ((client_address.METADATA_KEY, client_address.sign(self._client_ip(conn), self._address_key)),)

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
        single_params(request, "wait", "after")
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
        return JSONResponse(openapi_spec(self.settings.long_poll_max_seconds))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return JSONResponse(error_body(exc.code, exc.message, exc.fields, correlation_id=correlation.current()),
                        status_code=exc.status, headers=exc.headers)


async def _starlette_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (with Allow) in the JSON error format of every other answer."""
    assert isinstance(exc, HTTPException)
    # NO_ROUTE, not NOT_FOUND: a client can tell a route this gateway lacks from an unknown resource
    code = {404: "NO_ROUTE", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
    message = {404: f"no route {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return JSONResponse(error_body(code, message, correlation_id=correlation.current()),
                        status_code=exc.status_code, headers=exc.headers)


async def _websocket_over_http(request: Request) -> Response:
    raise HttpError(426, "UPGRADE_REQUIRED", "/ws speaks WebSocket: send the upgrade handshake",
                    headers={"Upgrade": "websocket", "Connection": "Upgrade"})


def one_route_per_path(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Routes of one path merged into one that dispatches on the method: Starlette stops at the first
    route of a path, so with two (GET and POST /api/works) a PUT got an Allow naming only the first's."""
    by_path: dict[str, list[Route]] = {}
    merged: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and route.methods:
            if route.path not in by_path:
                by_path[route.path] = []
                merged.append(route)  # placeholder: keeps the order of first appearance
            by_path[route.path].append(route)
        else:
            merged.append(route)
    out: list[BaseRoute] = []
    for route in merged:
        group = by_path.get(route.path) if isinstance(route, Route) and route.methods else None
        if not group or len(group) == 1:
            out.append(route)
            continue
        endpoints = {method: r.endpoint for r in group for method in r.methods or ()}

        async def dispatch(request: Request, endpoints: dict[str, Any] = endpoints) -> Response:
            # HEAD is served by the GET endpoint (Starlette adds HEAD wherever GET is allowed)
            return await (endpoints.get(request.method) or endpoints["GET"])(request)

        out.append(Route(route.path, dispatch, methods=sorted(endpoints), include_in_schema=False))
    return out


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
        Route("/ws", _websocket_over_http, methods=["GET"]),
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/openapi.json", gateway.openapi, methods=["GET"]),
        *docs_routes(),
        *CatalogRoutes(gateway).routes(),
        *GraphRoutes(gateway).routes(),
        *FeedRoutes(gateway).routes(),
        *ChatRoutes(gateway).routes(),
    ]
    app = Starlette(routes=one_route_per_path(routes), lifespan=lifespan,
                    exception_handlers={HttpError: _http_error, grpc.aio.AioRpcError: _grpc_error,
                                        HTTPException: _starlette_error})
    return CorrelationMiddleware(app)
