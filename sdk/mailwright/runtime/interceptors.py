"""The server interceptor every Mailwright RPC passes through.

In one place, for every method of every service:
- authentication: the bearer token is verified; a bad token is UNAUTHENTICATED;
- authorisation: the token must carry the method's `required_scope` (read from the proto
  descriptors) and be valid for every workspace the request names (`workspaces/{id}/...`
  in any string field, nested messages included); otherwise PERMISSION_DENIED;
- error mapping: domain errors (`mailwright.errors`) become statuses, with
  `google.rpc.BadRequest` field violations and `google.rpc.RetryInfo` in the details;
  an unexpected exception is logged and answered INTERNAL without internals.

Health checking and reflection are open: probes and tools carry no token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import redis.exceptions
import sqlalchemy.exc
from google.protobuf import any_pb2, descriptor_pool, duration_pb2
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from mailwright.common.v1 import options_pb2
from mailwright.errors import (
    InvalidArgument,
    MailwrightError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from mailwright.names import workspace_prefix
from mailwright.runtime.auth import Principal, TokenAuthority, current_principal
from mailwright.runtime.rpc import Context

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.")

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
    ConnectionError,
)


def required_scope(method_path: str) -> str | None:
    """The scope a method needs, from `/pkg.Service/Method`; None if the method is unknown."""
    service_name, _, method_name = method_path.lstrip("/").partition("/")
    try:
        service = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return None
    method: MethodDescriptor | None = service.methods_by_name.get(method_name)
    if method is None:
        return None
    options: Any = method.GetOptions()
    scope: str = options.Extensions[options_pb2.required_scope]
    return scope


def named_workspaces(message: Message, depth: int = 0) -> set[str]:
    """Every workspace id that a `workspaces/{id}` string in the message names."""
    found: set[str] = set()
    if depth > 4:
        return found
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            values = value if _is_repeated(field) else [value]
            for item in values:
                workspace = workspace_prefix(item)
                if workspace:
                    found.add(workspace)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            message_type: Any = field.message_type
            if message_type.GetOptions().map_entry or message_type.full_name.startswith(
                "google.protobuf."
            ):
                continue
            items = value if _is_repeated(field) else [value]
            for item in items[:50]:
                found |= named_workspaces(item, depth + 1)
    return found


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 6 added `is_repeated`; protobuf 7 removed `label`.
    repeated: Any = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    label: Any = getattr(field, "label", None)
    return bool(label == FieldDescriptor.LABEL_REPEATED)


def status_for(error: MailwrightError) -> grpc.Status:
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    if isinstance(error, ResourceExhausted) and error.retry_after is not None:
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(
                seconds=int(error.retry_after), nanos=int((error.retry_after % 1) * 1e9)
            )
        )
        detail = any_pb2.Any()
        detail.Pack(retry)
        status.details.append(detail)
    return rpc_status.to_status(status)


def _internal_status() -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see the server log")
    )


def _unavailable_status(error: BaseException) -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message=f"a dependency is unavailable ({type(error).__name__}); retry",
        )
    )


async def _abort(context: Context, error: BaseException, method: str) -> None:
    if isinstance(error, MailwrightError):
        if error.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            log.error("%s failed: %s", method, error.message)
        await context.abort_with_status(status_for(error))
    elif isinstance(error, NotImplementedError):
        await context.abort_with_status(
            rpc_status.to_status(
                status_pb2.Status(
                    code=code_pb2.UNIMPLEMENTED, message=f"{method} is not implemented yet"
                )
            )
        )
    elif isinstance(error, UNAVAILABLE_ERRORS):
        log.warning("%s: dependency unavailable: %s", method, type(error).__name__)
        await context.abort_with_status(_unavailable_status(error))
    else:
        log.exception("%s raised an unexpected error", method)
        await context.abort_with_status(_internal_status())


class GatewayInterceptor(grpc.aio.ServerInterceptor):
    """Authentication, authorisation and error mapping for every Mailwright RPC."""

    def __init__(self, authority: TokenAuthority | None) -> None:
        # authority None: auth disabled (tests of a single servicer); never in `serve`/`up`.
        self.authority = authority
        self._scopes: dict[str, str | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.lstrip("/").startswith(OPEN_SERVICES):
            return handler
        if method not in self._scopes:
            self._scopes[method] = required_scope(method)
        scope = self._scopes[method] or ""
        metadata = dict(handler_call_details.invocation_metadata or ())
        authorization = metadata.get("authorization")
        return _wrap(handler, method, self._authorize(authorization, scope))

    def _authorize(
        self, authorization: str | bytes | None, scope: str
    ) -> Callable[[Message], Principal | None]:
        authority = self.authority

        def check(request: Message) -> Principal | None:
            if authority is None:
                return None
            value = authorization.decode() if isinstance(authorization, bytes) else authorization
            principal = authority.verify_header(value)
            if scope and not principal.allows_scope(scope):
                raise PermissionDenied(f"token lacks scope {scope!r}")
            for workspace in named_workspaces(request):
                if not principal.allows_workspace(workspace):
                    raise PermissionDenied(f"token is not valid for workspace {workspace!r}")
            return principal

        return check


def _wrap(
    handler: Handler,
    method: str,
    authorize: Callable[[Message], Principal | None],
) -> Handler:
    if handler.unary_unary is not None:
        inner_unary: Any = handler.unary_unary

        async def unary_unary(request: Message, context: Context) -> Any:
            try:
                token = current_principal.set(authorize(request))
                try:
                    return await inner_unary(request, context)
                finally:
                    current_principal.reset(token)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                if isinstance(error, Unauthenticated | PermissionDenied):
                    log.info("%s refused: %s", method, error.message)
                await _abort(context, error, method)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        inner_stream: Any = handler.unary_stream

        async def unary_stream(request: Message, context: Context) -> AsyncIterator[Any]:
            try:
                token = current_principal.set(authorize(request))
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    current_principal.reset(token)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await _abort(context, error, method)

        return grpc.unary_stream_rpc_method_handler(
            unary_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler
