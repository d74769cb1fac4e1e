"""Domain errors, and their one mapping to gRPC status with google.rpc details (AIP-193)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


class DomainError(Exception):
    """A rule of the domain said no. Raised by domain code; mapped to gRPC only at the edge."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    reason: str = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field_violations: Sequence[tuple[str, str]] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.field_violations = list(field_violations)
        self.metadata = dict(metadata or {})

    def to_status(self, domain: str) -> status_pb2.Status:
        details = []
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=domain, metadata=self.metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        details.append(packed)
        if self.field_violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.field_violations
                ]
            )
            packed_bad = any_pb2.Any()
            packed_bad.Pack(bad)
            details.append(packed_bad)
        code: int = getattr(code_pb2, self.grpc_code.name)
        return status_pb2.Status(code=code, message=self.message, details=details)


class InvalidArgument(DomainError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class FailedPrecondition(DomainError):
    """The record is in a state that does not allow this (e.g. closing a closed deal)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class AlreadyExists(DomainError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


def require(fields: Mapping[str, object]) -> None:
    """Raise InvalidArgument naming every empty required field."""
    missing = [(name, "is required") for name, value in fields.items() if value in (None, "", 0)]
    if missing:
        raise InvalidArgument("missing required fields: " + ", ".join(n for n, _ in missing), field_violations=missing)


class Unavailable(DomainError):
    """A dependency the call needs (e.g. NATS) is not reachable right now; the caller may retry."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"
