"""A local HubSpot, as documented, for the connector's tests, demos and benchmark.

`FakeHubSpot.app()` serves, behind `Authorization: Bearer <token>` (else 401 with
`category: INVALID_AUTHENTICATION`), and with HubSpot's rate limits (429 with
`policyName` `TEN_SECONDLY_ROLLING` or `DAILY`, and `X-HubSpot-RateLimit-*` headers):

- `GET /crm/v3/objects/contacts` — `limit` ≤ 100, `properties`, `after` cursor,
  `paging.next.after`;
- `POST /crm/v3/objects/contacts/search` — filters on `lastmodifieddate`/`email`
  (`EQ GT GTE LT LTE`), sorts, `limit` ≤ 200, `after` offsets, `total`, and no page past
  10,000 results (400);
- `POST /crm/v3/objects/contacts/batch/upsert` (`idProperty: email`, ≤ 100 inputs,
  unknown properties refused; one invalid email refuses the whole batch, 400
  `VALIDATION_ERROR` with `INVALID_EMAIL`, nothing saved) and
  `batch/read` (207 with `OBJECT_NOT_FOUND` for the missing);
- lists: find by name, create (`MANUAL`), `memberships/add-and-remove`;
- `POST /marketing/v4/email/single-send` and `/marketing/v3/transactional/single-email/send`
  — one email per `sendId` (`IDEMPOTENT_IGNORE` after), a `sendResult` per recipient
  when told to refuse one (`refuse(address, "PREVIOUSLY_BOUNCED")`).

Error bodies are HubSpot's: `{"status": "error", "message", "correlationId",
"category"}`. `delivery()` builds webhook requests signed v3 (and v1/v2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailwright.testing.fakes import decode_cursor, encode_cursor

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
KNOWN_PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "city",
        "country",
        "lifecyclestage",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    }
)
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
CONTACTS = "0-1"
INVALID_REQUEST = "400"


def iso_ms(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def rate_limited(policy: str, retry_after: float | None = None) -> JSONResponse:
    """HubSpot's 429: `policyName` says which limit (`TEN_SECONDLY_ROLLING`, `DAILY`)."""
    window = "daily" if policy == "DAILY" else policy.lower()
    response = JSONResponse(
        {
            "status": "error",
            "message": f"You have reached your {window} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "requestId": str(uuid.uuid4()),
        },
        status_code=429,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = f"{retry_after:g}"
    return response


def _time_value(value: object) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            return ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


class FakeHubSpot:
    """One HubSpot account's contacts, lists and sends, and the API over them."""

    def __init__(
        self,
        *,
        token: str = "pat-na1-fake-token",  # noqa: S107 (the fake account's own)
        client_secret: str = "fake-app-client-secret",  # noqa: S107
        portal_id: int = 62515,
        email_ids: Iterable[int] = (4242,),
        search_max_results: int = 10_000,
        ten_second_limit: int = 10**9,
        daily_limit: int = 10**9,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.client_secret = client_secret
        self.portal_id = portal_id
        self.email_ids = set(email_ids)
        self.search_max_results = search_max_results
        self.ten_second_limit = ten_second_limit
        self.daily_limit = daily_limit
        self.clock = clock
        self.contacts: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.sends: dict[str, dict[str, Any]] = {}
        self.refusals: dict[str, str] = {}
        self.requests_today = 0
        self._recent: deque[float] = deque()
        self._now = EPOCH
        self._next_id = 100
        self._lock = threading.Lock()

    # -- data -----------------------------------------------------------------------

    def _tick(self) -> datetime:
        # A minute between edits, so runs' overlaps (seconds) see one boundary contact.
        self._now += timedelta(minutes=1)
        return self._now

    def _create(self, properties: Mapping[str, str]) -> dict[str, Any]:
        self._next_id += 1
        record_id = str(self._next_id)
        now = self._tick()
        contact = {
            "id": record_id,
            "properties": {
                **properties,
                "hs_object_id": record_id,
                "createdate": iso_ms(now),
                "lastmodifieddate": iso_ms(now),
            },
            "createdAt": iso_ms(now),
            "updatedAt": iso_ms(now),
            "archived": False,
        }
        self.contacts[record_id] = contact
        return contact

    def add_contacts(self, count: int) -> None:
        with self._lock:
            start = len(self.contacts)
            for n in range(start, start + count):
                self._create(
                    {
                        "email": f"contact{n}@example.com",
                        "firstname": f"Grace{n}",
                        "lastname": "Hopper",
                        "city": "Arlington",
                        "lifecyclestage": "lead",
                    }
                )

    def edit_contacts(self, count: int) -> None:
        """Change the `count` least recently modified contacts (a newer lastmodifieddate)."""
        with self._lock:
            oldest = sorted(
                self.contacts.values(),
                key=lambda c: (c["properties"]["lastmodifieddate"], int(c["id"])),
            )[:count]
            for contact in oldest:
                self._update(contact, {"lifecyclestage": "customer"}, force=True)

    def _update(
        self, contact: dict[str, Any], values: Mapping[str, str], force: bool = False
    ) -> bool:
        props = contact["properties"]
        changed = force or any(props.get(k) != v for k, v in values.items())
        if changed:
            props.update(values)
            now = iso_ms(self._tick())
            props["lastmodifieddate"] = now
            contact["updatedAt"] = now
        return changed

    def by_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        for contact in self.contacts.values():
            if str(contact["properties"].get("email", "")).lower() == wanted:
                return contact
        return None

    def list_named(self, name: str) -> dict[str, Any] | None:
        return next((lst for lst in self.lists.values() if lst["name"] == name), None)

    def refuse(self, address: str, send_result: str) -> None:
        """Answer sends to `address` with this `sendResult` (PREVIOUSLY_BOUNCED …)."""
        self.refusals[address.strip().lower()] = send_result

    def refuse_request(self, address: str) -> None:
        """Answer sends to `address` with 400 VALIDATION_ERROR (a request HubSpot refuses)."""
        self.refusals[address.strip().lower()] = INVALID_REQUEST

    # -- the API ----------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/crm/v3/objects/contacts", self._list_contacts, methods=["GET"]),
            Route("/crm/v3/objects/contacts/search", self._search, methods=["POST"]),
            Route("/crm/v3/objects/contacts/batch/upsert", self._upsert, methods=["POST"]),
            Route("/crm/v3/objects/contacts/batch/read", self._read, methods=["POST"]),
            Route(
                "/crm/v3/lists/object-type-id/{object_type}/name/{name:path}",
                self._list_by_name,
                methods=["GET"],
            ),
            Route("/crm/v3/lists", self._create_list, methods=["POST"]),
            Route(
                "/crm/v3/lists/{list_id}/memberships/add-and-remove",
                self._memberships,
                methods=["PUT"],
            ),
            Route("/marketing/v4/email/single-send", self._send, methods=["POST"]),
            Route("/marketing/v3/transactional/single-email/send", self._send, methods=["POST"]),
        ]
        return Starlette(routes=[_guarded(self, route) for route in routes])

    def gate(self, request: Request) -> Response | None:
        """Authentication, then the rate limits; None lets the request through."""
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        now = self.clock()
        while self._recent and now - self._recent[0] >= 10:
            self._recent.popleft()
        if self.requests_today >= self.daily_limit:
            return rate_limited("DAILY")
        if len(self._recent) >= self.ten_second_limit:
            return rate_limited("TEN_SECONDLY_ROLLING", retry_after=10 - (now - self._recent[0]))
        self._recent.append(now)
        self.requests_today += 1
        return None

    def headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                max(0, self.daily_limit - self.requests_today)
            ),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.ten_second_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.ten_second_limit - len(self._recent))),
        }

    def _shape(self, contact: Mapping[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
        names = wanted or DEFAULT_PROPERTIES
        props = contact["properties"]
        return {
            "id": contact["id"],
            "properties": {
                name: props.get(name)
                for name in {*names, "hs_object_id", "createdate", "lastmodifieddate"}
            },
            "createdAt": contact["createdAt"],
            "updatedAt": contact["updatedAt"],
            "archived": False,
        }

    async def _list_contacts(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            return error(400, "limit must be a number", "VALIDATION_ERROR")
        if not 1 <= limit <= 100:
            return error(400, "limit must be between 1 and 100", "VALIDATION_ERROR")
        wanted = [
            name
            for value in request.query_params.getlist("properties")
            for name in value.split(",")
            if name
        ]
        ordered = sorted(self.contacts.values(), key=lambda c: int(c["id"]))
        after = request.query_params.get("after")
        if after:
            last = decode_cursor(after)
            if last is None or not last.isdigit():
                return error(400, "Invalid input (after)", "VALIDATION_ERROR")
            ordered = [c for c in ordered if int(c["id"]) > int(last)]
        page = ordered[:limit]
        body: dict[str, Any] = {"results": [self._shape(c, wanted) for c in page]}
        if len(ordered) > limit:
            token = encode_cursor(page[-1]["id"])
            body["paging"] = {
                "next": {
                    "after": token,
                    "link": f"https://api.hubapi.com/crm/v3/objects/contacts?after={token}",
                }
            }
        return JSONResponse(body)

    async def _search(self, request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, Mapping):
            return error(400, "Invalid input JSON", "VALIDATION_ERROR")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            return error(400, "limit must be between 1 and 200", "VALIDATION_ERROR")
        offset = int(str(body.get("after") or 0)) if str(body.get("after") or 0).isdigit() else -1
        if offset < 0:
            return error(400, "after must be an offset", "VALIDATION_ERROR")
        if offset >= self.search_max_results:
            return error(
                400,
                f"There was a problem with the request: the search can return at most "
                f"{self.search_max_results} results",
                "VALIDATION_ERROR",
            )
        matches = [c for c in self.contacts.values() if _matches(c, body.get("filterGroups"))]
        _sort(matches, body.get("sorts"))
        page = matches[offset : offset + limit]
        answer: dict[str, Any] = {
            "total": len(matches),
            "results": [self._shape(c, body.get("properties") or []) for c in page],
        }
        if offset + limit < len(matches):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return JSONResponse(answer)

    async def _upsert(self, request: Request) -> Response:
        body = await _json(request)
        inputs = body.get("inputs") if isinstance(body, Mapping) else None
        if not isinstance(inputs, list) or not inputs:
            return error(400, "inputs are required", "VALIDATION_ERROR")
        if len(inputs) > 100:
            return error(400, "Batch input size may not exceed 100", "VALIDATION_ERROR")
        unknown = sorted(
            {name for item in inputs for name in (item.get("properties") or {})} - KNOWN_PROPERTIES
        )
        if unknown:
            return error(
                400,
                f"Property values were not valid: {unknown[0]} does not exist",
                "VALIDATION_ERROR",
            )
        if any(item.get("idProperty") != "email" for item in inputs):
            return error(400, "idProperty must be a unique property", "VALIDATION_ERROR")
        invalid = [
            {
                "isValid": False,
                "message": f"Email address {item.get('id')} is invalid",
                "error": "INVALID_EMAIL",
                "name": "email",
            }
            for item in inputs
            if not _valid_email(str(item.get("id", "")))
        ]
        if invalid:
            # One invalid input refuses the whole batch: HubSpot answers 207 with partial
            # failures only to batches whose inputs carry an `objectWriteTraceId`.
            return error(
                400, f"Property values were not valid: {json.dumps(invalid)}", "VALIDATION_ERROR"
            )
        results = []
        for item in inputs:
            email = str(item.get("id", "")).strip().lower()
            values = {k: str(v) for k, v in (item.get("properties") or {}).items()}
            values["email"] = email
            contact = self.by_email(email)
            new = contact is None
            if contact is None:
                contact = self._create(values)
            else:
                self._update(contact, values)
            results.append({**self._shape(contact, list(values)), "new": new})
        return JSONResponse({"status": "COMPLETE", "results": results})

    async def _read(self, request: Request) -> Response:
        body = await _json(request)
        inputs = body.get("inputs") if isinstance(body, Mapping) else None
        if not isinstance(inputs, list) or len(inputs) > 100:
            return error(400, "inputs: 1 to 100", "VALIDATION_ERROR")
        found, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            contact = (
                self.by_email(key) if body.get("idProperty") == "email" else self.contacts.get(key)
            )
            if contact is None:
                missing.append(key)
            else:
                found.append(self._shape(contact, body.get("properties") or ["email"]))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": found}
        if missing:
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or "
                    "not exist.",
                    "context": {"ids": missing},
                }
            ]
            return JSONResponse(answer, status_code=207)
        return JSONResponse(answer)

    async def _list_by_name(self, request: Request) -> Response:
        found = self.list_named(request.path_params["name"])
        if found is None or request.path_params["object_type"] != CONTACTS:
            return error(404, "List does not exist with that name", "OBJECT_NOT_FOUND")
        return JSONResponse({"list": _public_list(found)})

    async def _create_list(self, request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, Mapping) or not isinstance(body.get("name"), str):
            return error(400, "name is required", "VALIDATION_ERROR")
        if body.get("processingType") not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
            return error(400, "processingType is invalid", "VALIDATION_ERROR")
        if self.list_named(body["name"]) is not None:
            return error(409, "A list with this name already exists", "CONFLICT")
        self._next_id += 1
        created = {
            "listId": str(self._next_id),
            "name": body["name"],
            "objectTypeId": body.get("objectTypeId", CONTACTS),
            "processingType": body["processingType"],
            "members": set(),
        }
        self.lists[created["listId"]] = created
        return JSONResponse({"list": _public_list(created)})

    async def _memberships(self, request: Request) -> Response:
        found = self.lists.get(request.path_params["list_id"])
        if found is None:
            return error(404, "List not found", "OBJECT_NOT_FOUND")
        if found["processingType"] == "DYNAMIC":
            return error(400, "Memberships of a DYNAMIC list cannot be changed", "VALIDATION_ERROR")
        body = await _json(request)
        if not isinstance(body, Mapping):
            return error(400, "Invalid input JSON", "VALIDATION_ERROR")
        add = [str(i) for i in body.get("recordIdsToAdd") or []]
        remove = [str(i) for i in body.get("recordIdsToRemove") or []]
        missing = [i for i in add + remove if i not in self.contacts]
        members: set[str] = found["members"]
        added = [i for i in add if i in self.contacts and i not in members]
        removed = [i for i in remove if i in members]
        members.update(added)
        members.difference_update(removed)
        return JSONResponse(
            {"recordIdsAdded": added, "recordIdsRemoved": removed, "recordsIdsMissing": missing}
        )

    async def _send(self, request: Request) -> Response:
        body = await _json(request)
        message = body.get("message") if isinstance(body, Mapping) else None
        if not isinstance(message, Mapping) or not isinstance(message.get("to"), str):
            return error(400, "message.to is required", "VALIDATION_ERROR")
        if body.get("emailId") not in self.email_ids:
            return error(
                400, f"emailId {body.get('emailId')} is not a published email", "VALIDATION_ERROR"
            )
        to = message["to"].strip().lower()
        if "@" not in to:
            return error(400, "message.to is not an email address", "VALIDATION_ERROR")
        send_key = str(message.get("sendId") or uuid.uuid4())
        now = iso_ms(datetime.now(UTC))
        if send_key in self.sends:
            previous = self.sends[send_key]
            return JSONResponse(
                {
                    "status": "COMPLETE",
                    "statusId": previous["statusId"],
                    "sendResult": "IDEMPOTENT_IGNORE",
                    "requestedAt": now,
                }
            )
        refusal = self.refusals.get(to)
        if refusal == INVALID_REQUEST:
            return error(400, "Invalid input: message.to", "VALIDATION_ERROR")
        status_id = str(uuid.uuid4())
        if refusal is not None:
            return JSONResponse(
                {
                    "status": "COMPLETE",
                    "statusId": status_id,
                    "sendResult": refusal,
                    "requestedAt": now,
                    "completedAt": now,
                }
            )
        self.sends[send_key] = {"statusId": status_id, "request": dict(body)}
        return JSONResponse({"status": "PENDING", "statusId": status_id, "requestedAt": now})

    # -- webhooks -----------------------------------------------------------------------

    def webhook_events(
        self,
        count: int = 1,
        *,
        first_event_id: int = 1000,
        kind: str = "contact.propertyChange",
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """Webhook events as HubSpot batches them (`attemptNumber` 0)."""
        return [
            {
                "eventId": first_event_id + n,
                "subscriptionId": 234567,
                "portalId": self.portal_id,
                "appId": 987654,
                "occurredAt": ms(EPOCH) + n,
                "subscriptionType": kind,
                "attemptNumber": 0,
                "objectId": 512 + n,
                "changeSource": "CRM",
                **(
                    {"propertyName": "firstname", "propertyValue": f"Grace{n}"}
                    if kind.endswith("propertyChange")
                    else {}
                ),
                **fields,
            }
            for n in range(count)
        ]

    def sign(
        self,
        body: bytes,
        *,
        url: str,
        timestamp: datetime,
        method: str = "POST",
        secret: str | None = None,
        versions: Sequence[str] = ("v3", "v2"),
    ) -> list[tuple[str, str]]:
        """The headers HubSpot signs `body` with: v3 (HMAC, timestamped) and v2 or v1."""
        key = (secret or self.client_secret).encode()
        stamp = str(ms(timestamp))
        headers = [("Content-Type", "application/json")]
        if "v3" in versions:
            signed = method.encode() + url.encode() + body + stamp.encode()
            digest = hmac.new(key, signed, hashlib.sha256).digest()
            headers += [
                ("X-HubSpot-Signature-v3", base64.b64encode(digest).decode()),
                ("X-HubSpot-Request-Timestamp", stamp),
            ]
        for legacy in ("v2", "v1"):
            if legacy in versions:
                source = key + (method.encode() + url.encode() if legacy == "v2" else b"") + body
                headers += [
                    ("X-HubSpot-Signature", hashlib.sha256(source).hexdigest()),
                    ("X-HubSpot-Signature-Version", legacy),
                ]
                break
        return headers

    def delivery(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        url: str,
        timestamp: datetime,
        method: str = "POST",
        secret: str | None = None,
        versions: Sequence[str] = ("v3", "v2"),
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers of a webhook request signed the ways HubSpot signs."""
        body = json.dumps(list(events)).encode()
        headers = self.sign(
            body, url=url, timestamp=timestamp, method=method, secret=secret, versions=versions
        )
        return body, headers


def _valid_email(value: str) -> bool:
    email = value.strip()
    return "@" in email and " " not in email


def _guarded(fake: FakeHubSpot, route: Route) -> Route:
    endpoint = route.endpoint

    async def guarded(request: Request) -> Response:
        with fake._lock:
            refused = fake.gate(request)
            headers = fake.headers()
        if refused is not None:
            refused.headers.update(headers)
            return refused
        await request.body()  # read now: under the lock, the endpoint's awaits never wait
        with fake._lock:
            response: Response = await endpoint(request)
        response.headers.update(headers)
        return response

    return Route(route.path, guarded, methods=list(route.methods or []))


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _public_list(found: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k != "members"} | {"size": len(found["members"])}


def _matches(contact: Mapping[str, Any], groups: object) -> bool:
    if not isinstance(groups, list) or not groups:
        return True
    props = contact["properties"]
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, Mapping) else []
        if all(_condition(props, f) for f in filters if isinstance(f, Mapping)):
            return True
    return False


def _condition(props: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
    name = str(condition.get("propertyName"))
    operator, value = condition.get("operator"), condition.get("value")
    left: Any
    right: Any
    if name in ("lastmodifieddate", "createdate"):
        left, right = _time_value(props.get(name)), _time_value(value)
    else:
        left, right = str(props.get(name) or "").lower(), str(value or "").lower()
    if left is None or right is None:
        return False
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, b: bool(a == b),
        "NEQ": lambda a, b: bool(a != b),
        "GT": lambda a, b: bool(a > b),
        "GTE": lambda a, b: bool(a >= b),
        "LT": lambda a, b: bool(a < b),
        "LTE": lambda a, b: bool(a <= b),
    }
    compare = comparisons.get(str(operator))
    return compare is not None and compare(left, right)


def _sort(contacts: list[dict[str, Any]], sorts: object) -> None:
    """Sort in place by the first sort's property (then by id), as HubSpot does."""
    first = sorts[0] if isinstance(sorts, list) and sorts else {}
    name = str(first.get("propertyName", "hs_object_id")) if isinstance(first, Mapping) else ""
    descending = isinstance(first, Mapping) and first.get("direction") == "DESCENDING"

    def key(contact: Mapping[str, Any]) -> tuple[Any, int]:
        value = contact["properties"].get(name)
        if name.endswith("date"):
            return (_time_value(value) or -1, int(contact["id"]))
        if name == "hs_object_id":
            return (int(contact["id"]), 0)
        return (str(value or ""), int(contact["id"]))

    contacts.sort(key=key, reverse=descending)
