"""The contracts' validation rules, enforced for every RPC of every server.

The rules are `buf.validate` annotations in proto/ (lengths, patterns, ranges, no control
characters...). `ValidationInterceptor` runs protovalidate on each request before the servicer sees
it and answers INVALID_ARGUMENT with a google.rpc.BadRequest naming each offending field, as
"work.book.isbn" or "work.tags[0].slug"; servicers keep only the checks an annotation cannot say
(a configured minimum, an ISBN check digit, what an update mask selects).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import protovalidate
from google.protobuf.message import Message

from culture_grpc.errors import invalid_argument

_validator = protovalidate.Validator()


def field_path(violation: protovalidate.Violation) -> str:
    """The violated field as a path into the request: "work.genre_paths[0]", "labels[\"k\"]"."""
    parts: list[str] = []
    path = violation.proto.field
    if path is None:  # a message-level rule names no field
        return ""
    for element in path.elements:
        name = element.field_name
        subscript = element.subscript
        if subscript is not None:
            key = subscript.value
            name += f'["{key}"]' if isinstance(key, str) else f"[{str(key).lower()}]"
        parts.append(name)
    return ".".join(parts)


def request_violations(request: Message) -> list[tuple[str, str]]:
    """`(field, what is wrong)` for every rule the request breaks; several for one field are joined.

    A message-level rule (no field) is reported under the message's name."""
    found: dict[str, list[str]] = {}
    for violation in _validator.collect_violations(request):
        field = field_path(violation) or request.DESCRIPTOR.name
        message = violation.proto.message or violation.proto.rule_id
        if message not in found.setdefault(field, []):
            found[field].append(message)
    return [(field, "; ".join(messages)) for field, messages in found.items()]


def check_request(request: Message) -> None:
    """Raise INVALID_ARGUMENT (google.rpc.BadRequest) when the request breaks its contract's rules."""
    if violations := request_violations(request):
        raise invalid_argument(violations, f"the {request.DESCRIPTOR.name} has invalid fields")


class ValidationInterceptor(grpc.aio.ServerInterceptor):
    """Validates every request message against its buf.validate rules before the servicer runs.

    Innermost in the chain, so the InvalidArgument it raises goes through the error mapping (with
    the correlation id and the access log) like any servicer error."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        # unknown method (grpc answers UNIMPLEMENTED), or a stream of requests (no contract has one)
        if handler is None or handler.request_streaming:
            return handler
        if handler.response_streaming:
            stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                check_request(request)
                result = stream(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that writes its responses with context.write()
                    await result

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)

        unary = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            check_request(request)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


__all__ = ["ValidationInterceptor", "check_request", "field_path", "request_violations"]
