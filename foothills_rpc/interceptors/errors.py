"""Domain errors -> gRPC status with `google.rpc.Status` details. The one place that knows codes."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from foothills_rpc.domain import errors

ERROR_DOMAIN = "foothills"

STATUS_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_code(error: errors.DomainError) -> grpc.StatusCode:
    # Every DomainError subclass has an entry (tests/test_errors.py checks), so one is always found.
    return next(STATUS_CODES[cls] for cls in type(error).__mro__ if cls in STATUS_CODES)


def rich_status(error: errors.DomainError) -> tuple[grpc.StatusCode, str, bytes]:
    """Code, message and the serialized `google.rpc.Status` for the `grpc-status-details-bin` trailer."""
    code = status_code(error)
    details = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    details.append(info)
    if isinstance(error, errors.InvalidArgument):
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=_cut(v.field, 200), description=_cut(v.description, 300),
                                                        reason=v.reason)
            for v in error.violations[:MAX_VIOLATIONS]
        ]))
    if isinstance(error, errors.ResourceExhausted) and error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(error.retry_after)
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    message = _cut(error.message, 500)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    return code, message, status.SerializeToString()


# Trailers must fit the client's metadata limit (16 KiB by default in grpc), whatever the request held.
MAX_VIOLATIONS = 20


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"
