"""Client side: channels whose calls carry the correlation id in effect.

A service calling another while serving a request (or handling an event) uses `insecure_channel`
so the callee sees the same `x-correlation-id` and its logs and events join the same chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from culture_events import correlation
from culture_grpc.interceptors import CORRELATION_ID_KEY


def _with_correlation_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    value = correlation.current()
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if value is None or CORRELATION_ID_KEY in metadata:  # an explicit id set by the caller wins
        return details
    metadata.add(CORRELATION_ID_KEY, value)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_correlation_id(client_call_details), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_correlation_id(client_call_details), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_correlation_id(client_call_details), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_correlation_id(client_call_details), request_iterator)


def correlation_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add the current correlation id to every outgoing call."""
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]


def insecure_channel(target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A plaintext asyncio channel (in-cluster traffic) that propagates the correlation id."""
    return grpc.aio.insecure_channel(
        target, options=list(options), interceptors=correlation_client_interceptors()
    )
