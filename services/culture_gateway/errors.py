"""gRPC status -> HTTP status and JSON error body, and the error the routes raise (HttpError). Pure:
unit-tested without servers.

Body: {"error": {"status": "ALREADY_EXISTS", "message": "...", "fields": {"username": "..."}}},
where `fields` names each offending request field (from google.rpc.BadRequest).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from starlette.requests import HTTPConnection

#: how each gRPC code reaches the browser
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,  # well-formed JSON whose fields are wrong (400: malformed)
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.CANCELLED: 499,
}

#: codes whose message may reach the browser as is (others: a generic text, no internals)
_PUBLIC_MESSAGES = frozenset(HTTP_STATUS) - {grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE,
                                             grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
_GENERIC = {500: "internal error", 501: "not available", 503: "a service is unavailable; retry shortly",
            504: "a service did not answer in time; retry shortly", 499: "the request was cancelled"}


def http_status_of(code: grpc.StatusCode) -> int:
    """The HTTP status for a gRPC code (500 for INTERNAL, UNKNOWN, DATA_LOSS and anything else)."""
    return HTTP_STATUS.get(code, 500)


def error_body(status: str, message: str, fields: Mapping[str, str] | None = None,
               **extra: Any) -> dict[str, Any]:
    """The JSON error body every failing endpoint answers with."""
    error: dict[str, Any] = {"status": status, "message": message}
    if fields:
        error["fields"] = dict(fields)
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def grpc_error_response(code: grpc.StatusCode, message: str, fields: Mapping[str, str],
                        retry_after: int | None = None,
                        correlation_id: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, JSON body, extra headers) for a failed upstream call."""
    status = http_status_of(code)
    if code not in _PUBLIC_MESSAGES:
        message = _GENERIC.get(status, "internal error")
    headers: dict[str, str] = {}
    if status == 429 and retry_after:
        headers["Retry-After"] = str(retry_after)
    if status == 503:
        headers["Retry-After"] = "1"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="culture"'
    body = error_body(code.name, message, fields, retry_after_seconds=retry_after if status == 429 else None,
                      correlation_id=correlation_id)
    return status, body, headers


class HttpError(Exception):
    """An error answered as JSON with the given HTTP status."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}


def single_params(request: HTTPConnection, *names: str) -> None:
    """A 422 naming each of these query parameters that was given more than once."""
    repeated = {n: "give it once" for n in names if len(request.query_params.getlist(n)) > 1}
    if repeated:
        raise HttpError(422, "INVALID_ARGUMENT", "repeated query parameters", repeated)


_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects more than `limit` deep (brackets in strings don't
    count). One pass over the bytes, no recursion: the guard runs before json.loads, whose parser
    recurses per level and fails with RecursionError (a 500) on a body of a few kilobytes."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False
