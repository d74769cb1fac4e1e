"""Domain errors, and their one mapping to gRPC status with google.rpc details (AIP-193)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


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


class Aborted(DomainError):
    """A concurrent change won: the record changed since the caller read it (a stale etag, AIP-154)."""

    grpc_code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class AlreadyExists(DomainError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class PermissionDenied(DomainError):
    """The caller may not do this (e.g. capture with a missing, unknown or revoked web-to-lead key)."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


def raise_all(errors: Sequence[InvalidArgument]) -> None:
    """Raise every collected validation error at once: the one error as it is, several as one
    InvalidArgument carrying all their messages, field violations and metadata."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidArgument(
            "; ".join(e.message for e in errors),
            field_violations=[v for e in errors for v in e.field_violations],
            metadata={k: v for e in errors for k, v in e.metadata.items()},
        )


def nul_characters(message: Message, prefix: str = "") -> list[str]:
    """Paths of the string fields of message (nested, repeated, maps) holding a NUL character:
    PostgreSQL text cannot store one, so it is refused at the door instead of failing a query."""
    found: list[str] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            values = value if field.is_repeated else [value]
            found += [path for v in values if "\x00" in v][:1]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                found += [f"{path}.{k}" for k, v in value.items() if "\x00" in str(k) or "\x00" in str(v)]
            elif field.is_repeated:
                for index, item in enumerate(value):
                    found += nul_characters(item, f"{path}.{index}.")
            else:
                found += nul_characters(value, f"{path}.")
    return found


def require(fields: Mapping[str, object]) -> None:
    """Raise InvalidArgument naming every empty required field."""
    missing = [(name, "is required") for name, value in fields.items() if value in (None, "", 0)]
    if missing:
        raise InvalidArgument("missing required fields: " + ", ".join(n for n, _ in missing), field_violations=missing)


class Unavailable(DomainError):
    """A dependency the call needs (e.g. NATS) is not reachable right now; the caller may retry."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class ResourceExhausted(DomainError):
    """The service is at its limit for this kind of work right now (e.g. every render slot is
    taken); the caller may retry after `retry_after_seconds`, sent as google.rpc.RetryInfo (the
    gateway makes it a 429 with Retry-After)."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after_seconds: int = 1,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds

    def to_status(self, domain: str) -> status_pb2.Status:
        status = super().to_status(domain)
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromSeconds(self.retry_after_seconds)
        status.details.add().Pack(retry)
        return status


def remote_field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, description) of the violations another service's INVALID_ARGUMENT names in its
    google.rpc.BadRequest details (empty when it names none)."""
    status = rpc_status.from_call(error)
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found
