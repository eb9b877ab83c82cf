"""culture_grpc: the gRPC plumbing every CulturePlatform service shares.

- `GrpcServer` (server.py): grpc.aio server + standard health service + reflection + interceptors.
- interceptors.py: correlation id, access log, default deadline, error mapping, and (validation.py)
  the contracts' buf.validate rules checked on every request.
- errors.py: `ServiceError` and friends, `invalid_argument(...)` (google.rpc.BadRequest details),
  and the client-side decoders `field_violations_of`, `status_details_of`.
- client.py: `insecure_channel` whose calls carry the correlation id in effect.

The correlation id lives in ONE contextvar, `culture_events.correlation.correlation_id`, shared with
the event library, so events published while serving a call carry the caller's id.
"""

from culture_grpc.client import correlation_client_interceptors, insecure_channel
from culture_grpc.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
    Unavailable,
    field_violations_of,
    invalid_argument,
    not_found,
    rich_status_of,
    status_details_of,
)
from culture_grpc.interceptors import CORRELATION_ID_KEY, default_interceptors
from culture_grpc.server import GrpcServer, GrpcServerSettings
from culture_grpc.validation import ValidationInterceptor, check_request

__all__ = [
    "CORRELATION_ID_KEY",
    "AlreadyExists",
    "FailedPrecondition",
    "GrpcServer",
    "GrpcServerSettings",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "ValidationInterceptor",
    "check_request",
    "correlation_client_interceptors",
    "default_interceptors",
    "field_violations_of",
    "insecure_channel",
    "invalid_argument",
    "not_found",
    "rich_status_of",
    "status_details_of",
]
