"""Domain errors that become gRPC statuses with machine-readable details.

Servicers raise these (or let them bubble up from the domain layer); the error-mapping interceptor
turns them into a status whose `grpc-status-details-bin` trailer carries a google.rpc.Status with
the details (google.rpc.BadRequest field violations, ResourceInfo, ErrorInfo...), the format every
gRPC client library can decode. Clients decode them with `field_violations_of` / `status_details_of`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class ServiceError(Exception):
    """A failure a caller should see as a specific gRPC status (not as INTERNAL)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)

    def to_status(self) -> grpc.Status:
        """The gRPC status (code, message, rich details in the trailing metadata) for this error."""
        packed = []
        for detail in self.details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return rpc_status.to_status(
            status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)
        )


class InvalidArgument(ServiceError):
    """The request is malformed; the details name the offending fields."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    """The resource to create exists already (e.g. a taken username)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows the operation (retrying as is will not help)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    """The caller's credentials are missing, wrong or expired."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(ServiceError):
    """A dependency is down; the caller may retry with backoff."""

    code = grpc.StatusCode.UNAVAILABLE


def invalid_argument(
    field_violations: Mapping[str, str] | Iterable[tuple[str, str]],
    message: str = "the request has invalid fields",
) -> InvalidArgument:
    """An INVALID_ARGUMENT error with a google.rpc.BadRequest listing `field -> what is wrong`.

    Field names are paths into the request, e.g. "work.book.isbn". Raise the result:
    `raise invalid_argument({"email": "must contain @"})`.
    """
    pairs = field_violations.items() if isinstance(field_violations, Mapping) else field_violations
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in pairs
        ]
    )
    return InvalidArgument(message, details=[bad_request])


def not_found(resource_type: str, resource_name: str) -> NotFound:
    """A NOT_FOUND error with a google.rpc.ResourceInfo naming what was missing."""
    info = error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=resource_name)
    return NotFound(f"{resource_type} {resource_name!r} not found", details=[info])


def _trailing_metadata(error: grpc.RpcError) -> Iterable[tuple[str, str | bytes]]:
    """The trailing metadata of a failed call, sync (grpc.Call) or asyncio (AioRpcError) alike."""
    metadata = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    return tuple(metadata or ())


def rich_status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to a failed call, if any."""
    for key, value in _trailing_metadata(error):
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def status_details_of(error: grpc.RpcError, detail_type: type[Message]) -> list[Message]:
    """The details of one type (e.g. error_details_pb2.BadRequest) attached to a failed call."""
    status = rich_status_of(error)
    found = []
    for packed in status.details if status else ():
        if packed.Is(detail_type.DESCRIPTOR):
            detail = detail_type()
            packed.Unpack(detail)
            found.append(detail)
    return found


def field_violations_of(error: grpc.RpcError) -> dict[str, str]:
    """`field -> description` from the google.rpc.BadRequest details of a failed call."""
    return {
        violation.field: violation.description
        for bad_request in status_details_of(error, error_details_pb2.BadRequest)
        for violation in bad_request.field_violations
    }
