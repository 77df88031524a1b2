"""Domain errors shared by every service, and their gRPC status codes.

Domain code raises these; the server's error interceptor turns them into statuses in one
place (INVALID_ARGUMENT carries `google.rpc.BadRequest` field violations in the status
details). Nothing known is ever reported as UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One wrong input field, named by its path in the request (`events[3].timestamp`)."""

    field: str
    description: str


class MailwrightError(Exception):
    """Base of the errors a caller is meant to see; `code` is the gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(MailwrightError):
    """Bad input; lists every field found wrong."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self, message: str | None = None, violations: Sequence[FieldViolation] = ()
    ) -> None:
        if message is None:
            message = "; ".join(f"{v.field}: {v.description}" for v in violations) or (
                "invalid argument"
            )
        super().__init__(message)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(violations=[FieldViolation(field, description)])


class NotFound(MailwrightError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MailwrightError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MailwrightError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(MailwrightError):
    """A concurrent change won; the caller may retry."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(MailwrightError):
    """A limit or a rate was exceeded; `retry_after` seconds when a retry makes sense."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(MailwrightError):
    """A dependency (bus, database, another service) is down; retryable."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(MailwrightError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MailwrightError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unimplemented(MailwrightError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Violations:
    """Collects field violations while validating, then raises them all at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def extend(self, items: Iterable[FieldViolation], prefix: str = "") -> None:
        for item in items:
            field = f"{prefix}.{item.field}" if prefix and item.field else prefix or item.field
            self._items.append(FieldViolation(field, item.description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[FieldViolation]:
        return iter(self._items)

    @property
    def items(self) -> tuple[FieldViolation, ...]:
        return tuple(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgument(violations=self._items)
