"""Server interceptors every CulturePlatform gRPC server runs, outermost first:

1. CorrelationIdInterceptor: `x-correlation-id` request metadata -> the correlation contextvar
   (a new id when absent), echoed in the trailing metadata, so every publish, outbox write and
   outgoing gRPC call made while serving carries it.
2. AccessLogInterceptor: one log line per call (method, code, duration, correlation id).
3. DeadlineInterceptor: a default server-side timeout for unary-response calls that arrive
   without a deadline (streams are long-lived by design and exempt).
4. ErrorMappingInterceptor: ServiceError -> its status with rich details; NotImplementedError ->
   UNIMPLEMENTED; TimeoutError, OSError and the database drivers' own "unreachable / too slow"
   errors (DEPENDENCY_UNAVAILABLE) -> UNAVAILABLE (retryable);
   any other exception -> INTERNAL without leaking internals (the traceback goes to the log).
5. ValidationInterceptor (validation.py): the request against its contract's buf.validate rules;
   INVALID_ARGUMENT with field violations before the servicer runs.

Each one wraps the method handler's behavior, for unary and streaming responses alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from culture_events import correlation
from culture_grpc.errors import ServiceError
from culture_grpc.validation import ValidationInterceptor

CORRELATION_ID_KEY = "x-correlation-id"

log = logging.getLogger("culture_grpc")
access_log = logging.getLogger("culture_grpc.access")

# Probes and tooling call these constantly; logging each call would drown the real traffic.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[..., Any]
Around = Callable[
    [grpc.HandlerCallDetails, grpc.aio.ServicerContext, bool], contextlib.AbstractAsyncContextManager
]


def _wrap_behavior(
    behavior: Behavior, around: Around, details: grpc.HandlerCallDetails, streaming: bool
) -> Behavior:
    """The same behavior, run inside `around(details, context, streaming)`."""
    if not streaming:

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with around(details, context, False):
                return await behavior(request, context)

        return unary_response

    async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with around(details, context, True):
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:  # a coroutine that writes its responses with context.write()
                await result

    return stream_response


def wrap_handler(
    handler: grpc.RpcMethodHandler, around: Around, details: grpc.HandlerCallDetails
) -> grpc.RpcMethodHandler:
    """A copy of a method handler whose behavior runs inside `around`."""
    if handler.request_streaming and handler.response_streaming:
        factory, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    elif handler.request_streaming:
        factory, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    elif handler.response_streaming:
        factory, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    else:
        factory, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    return factory(
        _wrap_behavior(behavior, around, details, handler.response_streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _AroundInterceptor(grpc.aio.ServerInterceptor):
    """Base: subclasses implement `around`, an async context manager around each call."""

    def around(
        self, details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext, streaming: bool
    ) -> contextlib.AbstractAsyncContextManager:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None
        return wrap_handler(handler, self.around, handler_call_details)


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item_key, value in details.invocation_metadata or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return None


class CorrelationIdInterceptor(_AroundInterceptor):
    """Binds the caller's correlation id (or a new one) for the duration of the call."""

    @contextlib.asynccontextmanager
    async def around(
        self, details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext, streaming: bool
    ) -> AsyncIterator[None]:
        value = _metadata_value(details, CORRELATION_ID_KEY) or uuid.uuid4().hex
        context.set_trailing_metadata(((CORRELATION_ID_KEY, value),))
        with correlation.bound(value):
            yield


class AccessLogInterceptor(_AroundInterceptor):
    """Logs method, status code, duration and correlation id of every call."""

    @contextlib.asynccontextmanager
    async def around(
        self, details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext, streaming: bool
    ) -> AsyncIterator[None]:
        started = time.monotonic()
        code = grpc.StatusCode.OK
        try:
            yield
            code = context.code() or grpc.StatusCode.OK
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            if isinstance(code, int):  # some grpc versions report the raw integer
                code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
            level = logging.INFO
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS):
                level = logging.ERROR
            elif details.method.startswith(_QUIET_PREFIXES):
                level = logging.DEBUG
            access_log.log(
                level,
                "%s %s %.1fms correlation_id=%s",
                details.method,
                code.name,
                (time.monotonic() - started) * 1000,
                correlation.current(),
                extra={"grpc_method": details.method, "grpc_code": code.name},
            )


class DeadlineInterceptor(_AroundInterceptor):
    """Applies `default_timeout` seconds to unary-response calls that came without a deadline."""

    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    @contextlib.asynccontextmanager
    async def around(
        self, details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext, streaming: bool
    ) -> AsyncIterator[None]:
        # With a client deadline grpc cancels the call itself; streams may legitimately stay open.
        if streaming or context.time_remaining() is not None:
            yield
            return
        try:
            async with asyncio.timeout(self.default_timeout):
                yield
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no answer within the server's default timeout of {self.default_timeout:g}s "
                "(the call carried no deadline)",
                trailing_metadata=_correlation_metadata(),
            )


def _correlation_metadata() -> tuple[tuple[str, str], ...]:
    """The correlation id trailer: abort() replaces trailing metadata set earlier, so re-add it."""
    value = correlation.current()
    return ((CORRELATION_ID_KEY, value),) if value else ()


class ErrorMappingInterceptor(_AroundInterceptor):
    """Turns ServiceError into its gRPC status, and unexpected exceptions into INTERNAL."""

    @contextlib.asynccontextmanager
    async def around(
        self, details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext, streaming: bool
    ) -> AsyncIterator[None]:
        try:
            yield
        except ServiceError as error:
            status = error.to_status()
            await context.abort(
                status.code,
                status.details,
                trailing_metadata=(*status.trailing_metadata, *_correlation_metadata()),
            )
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise  # already a status, or the call was cancelled (client gone, deadline, timeout)
        except TimeoutError:
            # Raised by the servicer's own I/O (our default timeout cancels instead): a dependency is
            # slow, so the caller may retry.
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "a dependency did not answer in time; retry with backoff",
                trailing_metadata=_correlation_metadata(),
            )
        except NotImplementedError:
            # What the generated servicer base class raises for an RPC the service does not implement.
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{details.method} is not implemented by this server",
                trailing_metadata=_correlation_metadata(),
            )
        except Exception as exc:
            if dependency_unavailable(exc):
                # A dependency refused or dropped the connection, or is too slow (a database restarting,
                # a network cut): the caller may retry, as with a timeout. Not INTERNAL: nothing is
                # wrong with the request or the code (the gateway would answer 500, a bug by the
                # project's rules).
                log.warning("%s: a dependency is unreachable (correlation_id=%s): %r", details.method,
                            correlation.current(), exc)
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    "a dependency is unreachable; retry with backoff",
                    trailing_metadata=_correlation_metadata(),
                )
            log.exception("unhandled error in %s (correlation_id=%s)", details.method, correlation.current())
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error; quote correlation id {correlation.current()} when reporting it",
                trailing_metadata=_correlation_metadata(),
            )


#: The database drivers' errors that mean "unreachable, restarting or too slow" once the driver's own
#: retries are spent, as (module, class name): a call that fails with one is UNAVAILABLE, which
#: callers may retry. Resolved from the modules a process has already imported (an error of a driver
#: means its module is loaded), so this generic layer imports no driver.
DEPENDENCY_UNAVAILABLE: tuple[tuple[str, str], ...] = (
    ("asyncpg.exceptions", "PostgresConnectionError"),  # 08xxx: the connection failed or is gone
    ("asyncpg.exceptions", "OperatorInterventionError"),  # 57xxx: shutdown, cannot connect now
    ("pymongo.errors", "ConnectionFailure"),  # AutoReconnect, NetworkTimeout, ServerSelectionTimeout
    ("cassandra.cluster", "NoHostAvailable"),
    ("cassandra", "OperationTimedOut"),
    ("cassandra", "Unavailable"),
    ("cassandra", "Timeout"),  # ReadTimeout, WriteTimeout
    ("neo4j.exceptions", "ServiceUnavailable"),
    ("neo4j.exceptions", "SessionExpired"),
    ("neo4j.exceptions", "TransientError"),  # the server says: try again (leader switch, deadlock)
    ("redis.exceptions", "ConnectionError"),
    ("redis.exceptions", "TimeoutError"),
)


#: MongoDB error labels that say "the operation may succeed if tried again"
RETRYABLE_LABELS = ("TransientTransactionError", "RetryableWriteError")


def dependency_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says a dependency is unreachable or too slow (OSError, TimeoutError, or one of
    DEPENDENCY_UNAVAILABLE), or was raised while handling such an error (e.g. asyncpg's "cannot call
    Transaction.__aexit__(): the underlying connection is closed" after the connection dropped)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError | TimeoutError):
            return True
        for module, name in DEPENDENCY_UNAVAILABLE:
            cls = getattr(sys.modules.get(module), name, None)
            if isinstance(cls, type) and isinstance(error, cls):
                return True
        labelled = getattr(error, "has_error_label", None)  # MongoDB: the server marks retryable errors
        if callable(labelled) and any(labelled(label) for label in RETRYABLE_LABELS):
            return True
        error = error.__cause__ or error.__context__
    return False


def default_interceptors(default_timeout: float) -> list[grpc.aio.ServerInterceptor]:
    """The standard chain, outermost first (see the module docstring for why this order)."""
    return [
        CorrelationIdInterceptor(),
        AccessLogInterceptor(),
        DeadlineInterceptor(default_timeout),
        ErrorMappingInterceptor(),
        ValidationInterceptor(),
    ]
