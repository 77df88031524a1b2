"""What every HTTP endpoint of the edge shares: bounded bodies, JSON answers, errors.

No endpoint answers a 500 for anything a client sent: bodies are read against a limit
(413), decompressed against the same limit (a gzip bomb is a 413 too), JSON is parsed
defensively (400), and the domain's errors map to the HTTP status a client expects.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import sqlalchemy.exc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailwright.errors import (
    Aborted,
    FieldViolation,
    InvalidArgument,
    MailwrightError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from mailwright.runtime.kv import KeyValueUnavailable

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
NO_STORE = {"Cache-Control": "no-store"}
# Every refusal also carries `code` and `message`, the keys Segment's error bodies have:
# analytics-python (and RudderStack's fork of it) reads `payload['code']` and
# `payload['message']` from any answer other than 200, and a body without them makes it
# retry a refusal ten times, with exponential backoff, instead of giving up.
ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_encoding",
    429: "rate_limited",
    503: "unavailable",
}


class HttpError(Exception):
    """An answer other than success, with a JSON body."""

    def __init__(
        self,
        status: int,
        message: str,
        violations: Iterable[FieldViolation] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.violations = tuple(violations)
        self.headers = dict(headers or {})

    def response(self, extra_headers: Mapping[str, str] | None = None) -> JSONResponse:
        body: dict[str, Any] = {
            "success": False,
            "error": self.message,
            "code": ERROR_CODES.get(self.status, "internal"),
            "message": self.message,
        }
        if self.violations:
            body["violations"] = [
                {"field": v.field, "description": v.description} for v in self.violations
            ]
        headers = {**NO_STORE, **self.headers, **(extra_headers or {})}
        return JSONResponse(body, status_code=self.status, headers=headers)


def http_error(error: MailwrightError) -> HttpError:
    """The HTTP answer to a domain error."""
    if isinstance(error, InvalidArgument):
        return HttpError(400, error.message, error.violations)
    if isinstance(error, ResourceExhausted):
        wait = str(max(1, math.ceil(error.retry_after or 1)))
        # Segment sends both; analytics.js reads only X-RateLimit-Reset (seconds).
        return HttpError(
            429, error.message, headers={"Retry-After": wait, "X-RateLimit-Reset": wait}
        )
    if isinstance(error, Unavailable):
        return HttpError(503, error.message, headers={"Retry-After": "1"})
    if isinstance(error, Aborted):
        # A retry racing its original: nothing of it was accepted. HTTP clients retry a
        # 5xx; Segment's SDKs drop a batch answered 409 like any other 4xx but 429.
        return HttpError(503, error.message, headers={"Retry-After": "1"})
    if isinstance(error, Unauthenticated):
        return HttpError(401, error.message)
    if isinstance(error, PermissionDenied):
        return HttpError(403, error.message)
    if isinstance(error, NotFound):
        return HttpError(404, error.message)
    log.error("edge: unexpected %s: %s", type(error).__name__, error.message)
    return HttpError(500, "internal error; see the server log")


def guarded(endpoint: Endpoint) -> Endpoint:
    """Turn every failure of `endpoint` into a JSON answer (never a bare 500)."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HttpError as error:
            return error.response()
        except MailwrightError as error:
            return http_error(error).response()
        except (KeyValueUnavailable, sqlalchemy.exc.OperationalError, ConnectionError) as error:
            log.warning(
                "edge %s: dependency unavailable: %s", request.url.path, type(error).__name__
            )
            return HttpError(
                503, "a dependency is unavailable; retry", headers={"Retry-After": "1"}
            ).response()
        except Exception:
            log.exception("edge %s failed", request.url.path)
            return HttpError(500, "internal error; see the server log").response()

    return run


async def read_body(request: Request, limit: int) -> bytes:
    """The request body (gzip undone), at most `limit` bytes, or 413."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body of {declared} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise HttpError(415, f"content encoding {encoding!r} is not supported (gzip is)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise HttpError(400, "body is not valid gzip") from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise HttpError(413, f"body larger than {limit} bytes once decompressed")
    return plain


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400 saying why not."""
    if not body.strip():
        raise HttpError(400, "body is empty; a JSON object is expected")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise HttpError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise HttpError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise HttpError(400, f"a JSON object is expected, not {type(data).__name__}")
    return data
