"""A local Mailchimp Marketing API, as documented, for tests, demos and the benchmark.

`FakeMailchimp.app()` serves under `/3.0`, behind HTTP Basic with the API key as password
(else 401 `API Key Invalid`), and at most `max_connections` (10) requests at once per key
(else 429 `Too Many Requests`; `latency` holds each request so overlaps show):

- `PUT /lists/{list_id}/members/{subscriber_hash}` — add or update; the hash must be the
  MD5 of the lowercased `email_address`; `status_if_new` needed for a new member; an
  address that does not look real is refused (400 `Invalid Resource`); unknown merge tags
  are refused (400 `Your merge fields were invalid.`); a member in compliance state
  (`unsubscribed`, `cleaned`) keeps its status;
- `GET /lists/{list_id}/members/{subscriber_hash}`;
- `POST /lists/{list_id}/members/{subscriber_hash}/tags` — `{"tags": [{"name",
  "status"}]}`, 204; 404 for someone not in the audience;
- `POST /batches`, `GET /batches/{id}` — batch operations run when polled
  (`pending` → `started` → `finished`), results as a tar.gz of JSON arrays at
  `response_body_url` (served without authentication, as Mailchimp's storage does).

Errors are problem documents (`application/problem+json`: `type`, `title`, `status`,
`detail`, `instance`, `errors`). `audience_webhook()` builds form-encoded webhook bodies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import tarfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
MEMBER_PATH = re.compile(r"^/lists/(?P<list>[^/]+)/members/(?P<hash>[0-9a-f]{32})(?P<tags>/tags)?$")
COMPLIANCE = frozenset({"unsubscribed", "cleaned"})
NOT_VALIDATED = (
    "The resource submitted could not be validated. For field-specific details, see the "
    "'errors' array."
)
STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})


def md5(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def problem(status: int, title: str, detail: str, errors: list[Any] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": ERRORS_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors is not None:
        body["errors"] = errors
    return Response(json.dumps(body), status, media_type="application/problem+json")


Answer = tuple[int, Any]
"""An operation's status and JSON body (None: no content)."""


class FakeMailchimp:
    """One Mailchimp account: its audiences, members, tags and batches."""

    def __init__(
        self,
        *,
        api_key: str = "0123456789abcdef0123456789abcdef-us21",
        list_id: str = "a1b2c3d4e5",
        merge_tags: Sequence[str] = ("FNAME", "LNAME", "PHONE", "BIRTHDAY", "ADDRESS"),
        max_connections: int = 10,
        latency: float = 0.0,
        batch_polls: int = 2,
    ) -> None:
        self.api_key = api_key
        self.list_id = list_id
        self.merge_tags = tuple(merge_tags)
        self.max_connections = max_connections
        self.latency = latency
        self.batch_polls = batch_polls
        self.lists: dict[str, dict[str, dict[str, Any]]] = {list_id: {}}
        self.tag_ids: dict[str, int] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.archives: dict[str, bytes] = {}
        self.forgotten: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.throttled = 0
        self._lock = threading.Lock()

    # -- data ------------------------------------------------------------------------

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        """The default audience's members, by subscriber hash."""
        return self.lists[self.list_id]

    def member(self, email: str) -> dict[str, Any] | None:
        return self.members.get(md5(email))

    def tagged(self, tag: str) -> set[str]:
        """The addresses of the default audience's members that carry `tag`."""
        return {
            m["email_address"]
            for m in self.members.values()
            if tag in {t["name"] for t in m["tags"]}
        }

    def add_member(self, email: str, status: str = "subscribed", **merges: str) -> None:
        self._put(
            self.list_id,
            md5(email),
            {"email_address": email, "status": status, "merge_fields": merges},
        )

    def forget(self, email: str) -> None:
        """Permanently delete `email` from the default audience, as a GDPR request does:
        Mailchimp then refuses to add it again (`Forgotten Email Not Subscribed`)."""
        with self._lock:
            self.members.pop(md5(email), None)
            self.forgotten.add(md5(email))

    def snapshot(self) -> object:
        return {
            list_id: {
                h: (
                    m["email_address"],
                    m["status"],
                    tuple(sorted(m["merge_fields"].items())),
                    frozenset(t["name"] for t in m["tags"]),
                )
                for h, m in members.items()
            }
            for list_id, members in self.lists.items()
        }

    # -- operations, shared by the routes and batches -----------------------------------

    def _put(self, list_id: str, member_hash: str, body: Any) -> Answer:
        members = self.lists.get(list_id)
        if members is None:
            return 404, _problem_body(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        if not isinstance(body, Mapping) or not isinstance(body.get("email_address"), str):
            return 400, _problem_body(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated.",
                [{"field": "email_address", "message": "This value should not be blank."}],
            )
        email = body["email_address"].strip()
        if not EMAIL.match(email):
            return 400, _problem_body(
                400,
                "Invalid Resource",
                f"{email} looks fake or invalid, please enter a real email address.",
            )
        if md5(email) != member_hash:
            return 400, _problem_body(
                400, "Invalid Resource", "The subscriber hash does not match the email address."
            )
        merges = body.get("merge_fields") or {}
        unknown = [tag for tag in merges if tag not in self.merge_tags]
        if unknown:
            return 400, _problem_body(
                400,
                "Invalid Resource",
                "Your merge fields were invalid.",
                [{"field": tag, "message": "This merge field does not exist"} for tag in unknown],
            )
        current = members.get(member_hash)
        if current is None and list_id == self.list_id and member_hash in self.forgotten:
            return 400, _problem_body(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. The contact "
                "must re-subscribe to get back on the list.",
            )
        if current is None:
            status = body.get("status") or body.get("status_if_new")
            if status not in STATUSES:
                return 400, _problem_body(
                    400,
                    "Invalid Resource",
                    "The resource submitted could not be validated.",
                    [{"field": "status_if_new", "message": "Required for new members."}],
                )
            current = {
                "id": member_hash,
                "email_address": email.lower(),
                "unique_email_id": uuid.uuid4().hex[:10],
                "status": status,
                "merge_fields": {tag: "" for tag in self.merge_tags},
                "tags": [],
                "list_id": list_id,
            }
            members[member_hash] = current
        elif body.get("status") in STATUSES and current["status"] not in COMPLIANCE:
            current["status"] = body["status"]
        current["merge_fields"].update(merges)
        current["last_changed"] = datetime.now(UTC).isoformat(timespec="seconds")
        return 200, self._public(current)

    def _public(self, member: Mapping[str, Any]) -> dict[str, Any]:
        return {**member, "tags_count": len(member["tags"])}

    def _tags(self, list_id: str, member_hash: str, body: Any) -> Answer:
        member = self.lists.get(list_id, {}).get(member_hash)
        if member is None:
            return 404, _problem_body(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        tags = body.get("tags") if isinstance(body, Mapping) else None
        if not isinstance(tags, list):
            return 400, _problem_body(400, "Invalid Resource", "tags: required", [])
        for tag in tags:
            name = tag.get("name") if isinstance(tag, Mapping) else None
            status = tag.get("status") if isinstance(tag, Mapping) else None
            if (
                not isinstance(name, str)
                or not name
                or len(name) > 100
                or status not in ("active", "inactive")
            ):
                return 400, _problem_body(400, "Invalid Resource", "Invalid tag.", [])
            names = {t["name"] for t in member["tags"]}
            if status == "active" and name not in names:
                tag_id = self.tag_ids.setdefault(name, len(self.tag_ids) + 1)
                member["tags"].append({"id": tag_id, "name": name})
            elif status == "inactive":
                member["tags"] = [t for t in member["tags"] if t["name"] != name]
        return 204, None

    def _operation(self, method: str, path: str, body: Any) -> Answer:
        match = MEMBER_PATH.match(path)
        if match is None:
            return 404, _problem_body(404, "Resource Not Found", "Invalid path.")
        if match["tags"] and method == "POST":
            return self._tags(match["list"], match["hash"], body)
        if not match["tags"] and method == "PUT":
            return self._put(match["list"], match["hash"], body)
        if not match["tags"] and method == "GET":
            member = self.lists.get(match["list"], {}).get(match["hash"])
            if member is None:
                return 404, _problem_body(
                    404, "Resource Not Found", "The requested resource could not be found."
                )
            return 200, self._public(member)
        return 405, _problem_body(
            405, "Method Not Allowed", "The requested method and resource are not compatible."
        )

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        api = [
            Route("/lists/{list_id}/members/{member_hash}", self._member, methods=["GET", "PUT"]),
            Route("/lists/{list_id}/members/{member_hash}/tags", self._member, methods=["POST"]),
            Route("/batches", self._create_batch, methods=["POST"]),
            Route("/batches/{batch_id}", self._batch, methods=["GET"]),
        ]
        return Starlette(
            routes=[
                Mount(
                    "/3.0",
                    routes=[Route(r.path, self._gated(r.endpoint), methods=r.methods) for r in api],
                ),
                Route("/batch-results/{name}", self._results, methods=["GET"]),
            ]
        )

    def _gated(self, endpoint: Any) -> Any:
        async def handle(request: Request) -> Response:
            # Any user name; the API key is the password.
            if _basic_password(request.headers.get("authorization", "")) != self.api_key:
                return problem(
                    401,
                    "API Key Invalid",
                    "Your API key may be invalid, or you've "
                    "attempted to access the wrong datacenter.",
                )
            with self._lock:
                if self.in_flight >= self.max_connections:
                    self.throttled += 1
                    return problem(
                        429,
                        "Too Many Requests",
                        "You have exceeded the limit of 10 simultaneous connections.",
                    )
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                response: Response = await endpoint(request)
                return response
            finally:
                with self._lock:
                    self.in_flight -= 1

        return handle

    async def _member(self, request: Request) -> Response:
        body = await _json(request) if request.method != "GET" else None
        status, payload = self._operation(request.method, request.url.path[len("/3.0") :], body)
        return _answer(status, payload)

    async def _create_batch(self, request: Request) -> Response:
        body = await _json(request)
        operations = body.get("operations") if isinstance(body, Mapping) else None
        if not isinstance(operations, list) or not operations:
            return problem(
                400,
                "Invalid Resource",
                "operations: required",
                [{"field": "operations", "message": "This value should not be blank."}],
            )
        for op in operations:
            if not isinstance(op, Mapping) or op.get("method") not in (
                "GET",
                "POST",
                "PUT",
                "PATCH",
                "DELETE",
            ):
                return problem(400, "Invalid Resource", "Each operation needs method and path.")
        batch_id = uuid.uuid4().hex[:10]
        self.batches[batch_id] = {
            "id": batch_id,
            "status": "pending",
            "total_operations": len(operations),
            "finished_operations": 0,
            "errored_operations": 0,
            "submitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "completed_at": "",
            "response_body_url": "",
            "_operations": list(operations),
            "_polls": 0,
        }
        return JSONResponse(self._batch_view(batch_id))

    def _batch_view(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    async def _batch(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        batch["_polls"] += 1
        if batch["status"] != "finished":
            if batch["_polls"] >= self.batch_polls:
                self._run(batch, f"{request.url.scheme}://{request.url.netloc}")
            else:
                batch["status"] = "started"
        return JSONResponse(self._batch_view(batch["id"]))

    def _run(self, batch: dict[str, Any], base: str) -> None:
        results = []
        for op in batch["_operations"]:
            raw = op.get("body")
            try:
                body = json.loads(raw) if isinstance(raw, str) and raw else None
            except json.JSONDecodeError:
                body = None
            status, payload = self._operation(op["method"], str(op.get("path", "")), body)
            results.append(
                {
                    "status_code": status,
                    "operation_id": op.get("operation_id"),
                    "response": "" if payload is None else json.dumps(payload),
                }
            )
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for n in range(0, len(results), 500):
                data = json.dumps(results[n : n + 500]).encode()
                info = tarfile.TarInfo(f"{batch['id']}/{n // 500}.json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        self.archives[batch["id"]] = buffer.getvalue()
        batch.update(
            status="finished",
            finished_operations=len(results),
            errored_operations=sum(1 for r in results if r["status_code"] >= 400),
            completed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            response_body_url=f"{base}/batch-results/{batch['id']}.tar.gz",
        )

    async def _results(self, request: Request) -> Response:
        name = request.path_params["name"].removesuffix(".tar.gz")
        archive = self.archives.get(name)
        if archive is None:
            return Response(
                b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml"
            )
        return Response(archive, media_type="application/x-gzip")


def audience_webhook(
    kind: str,
    email: str,
    *,
    list_id: str = "a1b2c3d4e5",
    fired_at: datetime | None = None,
    merges: Mapping[str, str] | None = None,
    **data: str,
) -> bytes:
    """A form-encoded audience webhook body as Mailchimp sends it."""
    when = (fired_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    pairs: list[tuple[str, str]] = [("type", kind), ("fired_at", when)]
    if kind == "upemail":
        pairs += [
            ("data[list_id]", list_id),
            ("data[new_id]", md5(email)[:10]),
            ("data[new_email]", email),
            ("data[old_email]", data.pop("old_email", "")),
        ]
    else:
        pairs += [
            ("data[id]", md5(email)[:10]),
            ("data[list_id]", list_id),
            ("data[email]", email),
            ("data[email_type]", "html"),
        ]
        if kind in ("subscribe", "profile", "unsubscribe"):
            pairs.append(("data[merges][EMAIL]", email))
            pairs += [(f"data[merges][{k}]", v) for k, v in (merges or {}).items()]
            pairs += [("data[ip_opt]", "203.0.113.7")]
    pairs += [(f"data[{k}]", v) for k, v in data.items()]
    return urlencode(pairs).encode()


def _problem_body(status: int, title: str, detail: str, errors: list[Any] | None = None) -> Any:
    return json.loads(bytes(problem(status, title, detail, errors).body))


def _answer(status: int, payload: Any) -> Response:
    if payload is None:
        return Response(status_code=status)
    media = "application/problem+json" if status >= 400 else "application/json"
    return Response(json.dumps(payload), status, media_type=media)


def _basic_password(header: str) -> str | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
