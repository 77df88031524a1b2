"""Segment's HTTP tracking API: `/v1/track`, `/identify`, `/page`, `/screen`, `/alias`,
`/batch` (and `/import`, Segment's other name for it), and the one-letter paths Segment's
own clients post to: `/v1/t`, `/i`, `/p`, `/s`, `/a` (analytics.js, one call each) and
`/v1/b` (analytics.js batching, analytics-swift, analytics-kotlin, React Native). `group`
calls (`/v1/group`, `/v1/g`) are answered 400 by name rather than 404. RudderStack's
beacon transport posts batches to `/beacon/v1/batch?writeKey=…`.

Authentication is a write key, as the HTTP Basic user (`Authorization: Basic
base64(key + ":")`, what Segment's server libraries send) or as `writeKey` in the body
(what browsers send with `sendBeacon`, which cannot set headers). A call is at most
32 KB, a batch at most 500 KB. Browsers are answered with CORS headers when the
workspace's policy allows their origin; a page on another origin is refused (403).

Answers: 200 `{"success": true, ...}` with per-event results for a batch (a batch with
some bad events is 200 and names them; one where every event is bad is 400), 400 with
`violations` for a bad call, 401 for a missing or unknown write key, 413 for a body over
the limit, 429 with `Retry-After` over the rate, 503 with `Retry-After` when the bus is
down or a retry races its original (nothing was accepted).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.errors import FieldViolation, MailwrightError
from mailwright_ingest.catalog import Catalog
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.edge.common import (
    ERROR_CODES,
    NO_STORE,
    HttpError,
    guarded,
    http_error,
    parse_json_object,
    read_body,
)
from mailwright_ingest.edge.segment import Envelope, json_field, parse_call
from mailwright_ingest.intake import Intake, Outcome, Status
from mailwright_ingest.store import StoredWriteKey

SINGLE_CALLS = ("track", "identify", "page", "screen", "alias")
# Segment's clients post to the first letter of the call's type (analytics.js sends
# `/v1/t`, `/v1/p` …; its batching and the mobile SDKs send `/v1/b`).
SHORT_PATHS = {kind[0]: kind for kind in (*SINGLE_CALLS, "group")}
BATCH_PATHS = ("batch", "import", "b")
# RudderStack's beacon transport: `navigator.sendBeacon` cannot set headers, and its SDK
# puts the write key in the query rather than the body. Only this path reads it there.
BEACON_PATH = "/beacon/v1/batch"
ALLOWED_METHODS = "POST, OPTIONS"
PREFLIGHT_HEADERS = "Authorization, Content-Type, Content-Encoding"
# The header names a preflight may ask for: RFC 9110 tokens, a bounded list.
_HEADER_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}"
_HEADER_NAMES = re.compile(rf"^{_HEADER_NAME}(?:\s*,\s*{_HEADER_NAME}){{0,19}}$")
# A page's script reads only the response headers CORS exposes to it.
EXPOSED_HEADERS = "Retry-After, X-RateLimit-Reset"
# Every method reaches the endpoint, which answers the ones it does not take with JSON.
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _basic_user(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


class TrackingApi:
    def __init__(self, intake: Intake, catalog: Catalog, settings: IngestSettings) -> None:
        self.intake = intake
        self.catalog = catalog
        self.settings = settings

    def routes(self) -> Sequence[BaseRoute]:
        routes: list[BaseRoute] = []
        for kind in (*SINGLE_CALLS, "group"):
            # A group call is read like the others, so that it is refused by name (400).
            single = guarded(self._single(kind))
            routes.append(Route(f"/v1/{kind}", single, methods=ANY_METHOD))
        for letter, kind in SHORT_PATHS.items():
            routes.append(Route(f"/v1/{letter}", guarded(self._single(kind)), methods=ANY_METHOD))
        batch = guarded(self._batch)
        routes += [Route(f"/v1/{path}", batch, methods=ANY_METHOD) for path in BATCH_PATHS]
        routes.append(Route(BEACON_PATH, guarded(self._beacon_batch), methods=ANY_METHOD))
        return routes

    # -- the endpoints ------------------------------------------------------------------

    def _single(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            early = _preflight_or_method(request)
            if early is not None:
                return early
            cors = _reflect(request)
            try:
                body = await read_body(request, self.settings.http_max_call_bytes)
                data = parse_json_object(body)
                key = await self._write_key(request, data)
                cors = await self._cors(request, key)
            except HttpError as error:
                return _refuse(error, cors)
            envelope = _envelope(request, {}, None)
            event, problems = parse_call(data, kind, "", envelope, self.intake.limits)
            if event is None:
                return HttpError(400, "invalid call", problems).response(cors)
            try:
                (outcome,) = await self.intake.ingest(
                    key.workspace,
                    [event],
                    source="http",
                    field=lambda _: "event",
                    rate_key=f"wk:{key.key_id}",
                )
            except MailwrightError as error:
                return http_error(error).response(cors)
            if outcome.status is Status.REJECTED:
                violations = [
                    FieldViolation(json_field(v.field).removeprefix("event."), v.description)
                    for v in outcome.violations
                ]
                return HttpError(400, "invalid call", violations).response(cors)
            answer = {
                "success": True,
                "messageId": outcome.message_id,
                "status": outcome.status.value,
            }
            return JSONResponse(answer, headers={**NO_STORE, **cors})

        return endpoint

    async def _beacon_batch(self, request: Request) -> Response:
        return await self._batch(request, key_in_query=True)

    async def _batch(self, request: Request, *, key_in_query: bool = False) -> Response:
        early = _preflight_or_method(request)
        if early is not None:
            return early
        cors = _reflect(request)
        try:
            body = await read_body(request, self.settings.http_max_batch_bytes)
            data = parse_json_object(body)
            key = await self._write_key(request, data, key_in_query=key_in_query)
            cors = await self._cors(request, key)
            calls = data.get("batch")
            if not isinstance(calls, list):
                raise HttpError(400, "invalid batch", [FieldViolation("batch", "must be a list")])
            limit = self.settings.max_batch_events
            if len(calls) > limit:
                raise HttpError(
                    400,
                    "invalid batch",
                    [FieldViolation("batch", f"{len(calls)} calls; at most {limit} per batch")],
                )
        except HttpError as error:
            return _refuse(error, cors)
        context = data.get("context")
        envelope = _envelope(
            request, context if isinstance(context, dict) else {}, data.get("sentAt")
        )
        outcomes: list[Outcome | None] = [None] * len(calls)
        events = []
        positions: list[int] = []
        for index, call in enumerate(calls):
            event, problems = parse_call(
                call, None, f"batch[{index}]", envelope, self.intake.limits
            )
            if event is None:
                outcomes[index] = Outcome(
                    index, _message_id(call), Status.REJECTED, tuple(problems)
                )
            else:
                events.append(event)
                positions.append(index)
        try:
            ingested = await self.intake.ingest(
                key.workspace,
                events,
                source="http",
                field=lambda i: f"batch[{positions[i]}]",
                rate_key=f"wk:{key.key_id}",
            )
        except MailwrightError as error:
            return http_error(error).response(cors)
        for outcome in ingested:
            index = positions[outcome.index]
            outcomes[index] = Outcome(
                index,
                outcome.message_id,
                outcome.status,
                tuple(
                    FieldViolation(json_field(v.field), v.description) for v in outcome.violations
                ),
            )
        return _batch_answer([o for o in outcomes if o is not None], cors)

    # -- authentication and CORS --------------------------------------------------------

    async def _write_key(
        self, request: Request, data: dict[str, Any], *, key_in_query: bool = False
    ) -> StoredWriteKey:
        header = request.headers.get("authorization")
        candidate = _basic_user(header) if header else None
        if candidate is None:
            body_key = data.get("writeKey")
            candidate = body_key if isinstance(body_key, str) else None
        if candidate is None and key_in_query:
            candidate = request.query_params.get("writeKey")
        if not candidate:
            raise HttpError(
                401,
                "a write key is required: HTTP Basic user, or writeKey in the body",
                headers={"WWW-Authenticate": 'Basic realm="mailwright"'},
            )
        key = await self.catalog.write_key(candidate)
        if key is None:
            raise HttpError(
                401,
                "unknown or revoked write key",
                headers={"WWW-Authenticate": 'Basic realm="mailwright"'},
            )
        return key

    async def _cors(self, request: Request, key: StoredWriteKey) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None:
            return {}
        policy = await self.catalog.ensure(key.workspace)
        if not policy.allows_origin(origin):
            raise HttpError(403, f"origin {origin[:100]} is not allowed by the ingest policy")
        return _cors_headers(origin)


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def _preflight_or_method(request: Request) -> Response | None:
    if request.method == "OPTIONS":
        origin = request.headers.get("origin")
        headers = {"Allow": ALLOWED_METHODS, "Access-Control-Max-Age": "600", "Vary": "Origin"}
        if origin:
            # The workspace is not known before the actual request (it carries the write
            # key); that request is checked against the workspace's allowed origins.
            headers |= {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": _allowed_headers(request),
            }
        return Response(status_code=204, headers=headers)
    if request.method != "POST":
        return HttpError(
            405,
            f"{request.method} is not allowed; POST a JSON body",
            headers={"Allow": ALLOWED_METHODS},
        ).response()
    return None


def _allowed_headers(request: Request) -> str:
    """The headers a preflight asked for, when they are header names, else ours.

    Clients send headers of their own: RudderStack's JavaScript SDK an `AnonymousId`,
    analytics.js whatever `deliveryStrategy.config.headers` names. A browser drops the
    request when one is not allowed, and the answer reveals nothing: the request that
    follows is checked against the workspace's origins like any other."""
    asked = request.headers.get("access-control-request-headers", "").strip()
    return asked if _HEADER_NAMES.match(asked) else PREFLIGHT_HEADERS


def _refuse(error: HttpError, cors: dict[str, str]) -> Response:
    """The error answer; a page whose origin is refused learns nothing (no CORS headers)."""
    return error.response(None if error.status == 403 else cors)


def _reflect(request: Request) -> dict[str, str]:
    """CORS headers for an error answered before the workspace is known: its body says
    only what was wrong with the request, so the page may read it."""
    origin = request.headers.get("origin")
    return _cors_headers(origin) if origin else {}


def _envelope(request: Request, context: dict[str, Any], sent_at: Any) -> Envelope:
    browser = "origin" in request.headers
    return Envelope(
        context=context,
        sent_at=sent_at,
        ip=request.client.host if request.client is not None else "",
        user_agent=request.headers.get("user-agent", "") if browser else "",
    )


def _message_id(call: Any) -> str:
    value = call.get("messageId") if isinstance(call, dict) else None
    return value if isinstance(value, str) else ""


def _batch_answer(outcomes: list[Outcome], cors: dict[str, str]) -> JSONResponse:
    counts = {status: 0 for status in Status}
    results = []
    for outcome in outcomes:
        counts[outcome.status] += 1
        item: dict[str, Any] = {
            "index": outcome.index,
            "messageId": outcome.message_id,
            "status": outcome.status.value,
        }
        if outcome.violations:
            item["violations"] = [
                {"field": v.field, "description": v.description} for v in outcome.violations
            ]
        results.append(item)
    every_one_bad = bool(outcomes) and counts[Status.REJECTED] == len(outcomes)
    body: dict[str, Any] = {
        "success": not every_one_bad,
        "accepted": counts[Status.ACCEPTED],
        "duplicate": counts[Status.DUPLICATE],
        "rejected": counts[Status.REJECTED],
        "results": results,
    }
    if every_one_bad:
        body |= {"code": ERROR_CODES[400], "message": "every call of the batch was rejected"}
    return JSONResponse(
        body, status_code=400 if every_one_bad else 200, headers={**NO_STORE, **cors}
    )
