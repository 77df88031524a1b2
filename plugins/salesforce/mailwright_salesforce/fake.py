"""A local Salesforce org, as documented, for tests, demos and the benchmark.

One server is both the login host and the instance (`instance_url` is its own URL):

- `POST /services/oauth2/token` — client credentials (`client_id`, `client_secret`) or a
  JWT bearer assertion (RS256, checked against `public_key`: `iss`, `sub`, `aud` = this
  server's URL, `exp`); `{"error", "error_description"}` on refusal;
- under `/services/data/vXX.X`, behind `Authorization: Bearer` (else 401
  `INVALID_SESSION_ID`): `query?q=SOQL` with `nextRecordsUrl` pages of `batchSize`
  (`Sforce-Query-Options`), query locators that can expire (`INVALID_QUERY_LOCATOR`);
  `sobjects/{Object}` create; `sobjects/{Object}/{ExtField}/{value}` upsert (201
  created, 200 updated, 300 with the matching records' URLs when the value is on
  several); `composite/sobjects` create and delete and
  `composite/sobjects/{Object}/{ExtField}` upsert (≤ 200 records, per-record results,
  `DUPLICATE_EXTERNAL_ID` for a value on several records);
  Bulk API 2.0 `jobs/ingest` (create, CSV upload, `UploadComplete`, states, results);
- every API answer carries `Sforce-Limit-Info: api-usage=N/M`; past the org's allowance
  answers are 403 `REQUEST_LIMIT_EXCEEDED` (`TotalRequests Limit exceeded.`).

Errors are arrays `[{"message", "errorCode", "fields"}]`; record saves refuse a missing
required field (`REQUIRED_FIELD_MISSING`), an invalid email (`INVALID_EMAIL_ADDRESS`),
unknown fields (`INVALID_FIELD`) and a second campaign member (`DUPLICATE_VALUE`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailwright_salesforce.fake_soql import SoqlError, parse

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PREFIX = {"Contact": "003", "Lead": "00Q", "Campaign": "701", "CampaignMember": "00v"}
FIELDS = {
    "Contact": {
        "Email",
        "FirstName",
        "LastName",
        "Phone",
        "Title",
        "MailingCity",
        "MailingCountry",
    },
    "Lead": {
        "Email",
        "FirstName",
        "LastName",
        "Phone",
        "Title",
        "Company",
        "City",
        "Country",
        "Status",
    },
    "Campaign": {"Name", "IsActive"},
    "CampaignMember": {"CampaignId", "ContactId", "LeadId", "Status"},
}
REQUIRED = {
    "Contact": ["LastName"],
    "Lead": ["LastName", "Company"],
    "Campaign": ["Name"],
    "CampaignMember": ["CampaignId"],
}
SYSTEM = {"Id", "SystemModstamp", "CreatedDate", "LastModifiedDate"}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def sf_time(when: datetime) -> str:
    return (
        when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    )


def failure(status: int, code: str, message: str, fields: list[str] | None = None) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code, "fields": fields or []}], status)


SaveError = tuple[str, str, list[str]]


class FakeSalesforce:
    """One org: contacts, leads, campaigns and their members, and the API over them."""

    def __init__(
        self,
        *,
        client_id: str = "3MVG9fakeConsumerKey",
        client_secret: str = "fake-consumer-secret",  # noqa: S107 (the fake org's own)
        username: str = "integration@acme.example",
        public_key: str | None = None,
        api_version: str = "62.0",
        api_limit: int = 100_000,
        external_id_field: str = "Mailwright_Id__c",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.public_key = public_key
        self.api_version = api_version
        self.api_limit = api_limit
        self.api_used = 0
        self.external_id_field = external_id_field
        self.fields = {name: set(known) for name, known in FIELDS.items()}
        self.fields["Contact"].add(external_id_field)
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in PREFIX}
        self.tokens: set[str] = set()
        self.logins = 0
        self.locators: dict[str, list[dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._now = EPOCH
        self._lock = threading.Lock()

    # -- data ---------------------------------------------------------------------------

    def _tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def _new_id(self, sobject: str) -> str:
        return f"{PREFIX[sobject]}{next(self._ids):012d}AAA"

    def _insert(self, sobject: str, values: Mapping[str, Any]) -> dict[str, Any]:
        now = self._tick()
        record = {
            **values,
            "Id": self._new_id(sobject),
            "CreatedDate": now,
            "SystemModstamp": now,
            "LastModifiedDate": now,
        }
        self.records[sobject][record["Id"]] = record
        return record

    def add(self, sobject: str, count: int) -> list[str]:
        with self._lock:
            start = len(self.records[sobject])
            return [
                self._insert(
                    sobject,
                    {
                        "Email": f"{sobject.lower()}{n}@example.com",
                        "FirstName": f"Grace{n}",
                        "LastName": "Hopper",
                        "Company": "Navy" if sobject == "Lead" else None,
                    },
                )["Id"]
                for n in range(start, start + count)
            ]

    def edit(self, sobject: str, count: int) -> None:
        """Change the `count` least recently modified records (a newer SystemModstamp)."""
        with self._lock:
            oldest = sorted(
                self.records[sobject].values(), key=lambda r: (r["SystemModstamp"], r["Id"])
            )[:count]
            for record in oldest:
                record["Title"] = "Admiral"
                record["SystemModstamp"] = record["LastModifiedDate"] = self._tick()

    def expire_sessions(self) -> None:
        self.tokens.clear()

    def expire_locators(self) -> None:
        self.locators.clear()

    def campaign_named(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.records["Campaign"].values() if c["Name"] == name), None)

    def members_of(self, campaign_id: str) -> list[dict[str, Any]]:
        return [
            m for m in self.records["CampaignMember"].values() if m["CampaignId"] == campaign_id
        ]

    def contact_by_external_id(self, value: str) -> dict[str, Any] | None:
        return next(iter(self.contacts_by_external_id(value)), None)

    def contacts_by_external_id(self, value: str) -> list[dict[str, Any]]:
        return [
            c for c in self.records["Contact"].values() if c.get(self.external_id_field) == value
        ]

    def add_duplicates(self, value: str, count: int = 2) -> list[str]:
        """`count` contacts sharing one external id value, as an org whose external id
        field is not marked unique can hold: an upsert by that value matches them all."""
        with self._lock:
            return [
                self._insert(
                    "Contact",
                    {"LastName": f"Twin{n}", "Email": None, self.external_id_field: value},
                )["Id"]
                for n in range(count)
            ]

    # -- saves, shared by every write path -------------------------------------------------

    def _check(self, sobject: str, values: Mapping[str, Any], creating: bool) -> SaveError | None:
        unknown = [k for k in values if k not in self.fields[sobject] and k not in SYSTEM]
        if unknown:
            return (
                "INVALID_FIELD",
                f"No such column '{unknown[0]}' on sobject of type {sobject}",
                unknown[:1],
            )
        if any(k in SYSTEM for k in values):
            return ("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Id", ["Id"])
        email = values.get("Email")
        if email not in (None, "") and not EMAIL.match(str(email)):
            return ("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"])
        if creating:
            missing = [f for f in REQUIRED[sobject] if not values.get(f)]
            if missing:
                return (
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
        return None

    def upsert(
        self, sobject: str, field: str, key: str, values: Mapping[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Insert or update by external id: (201 or 200, result), (300, error with the
        matching records' URLs) or (400, error)."""
        if field != self.external_id_field or sobject != "Contact":
            return 404, {
                "errorCode": "NOT_FOUND",
                "message": f"Provided external ID field does "
                f"not exist or is not accessible: {field}",
                "fields": [],
            }
        clean = {k: v for k, v in values.items() if k not in ("attributes", field)}
        matches = self.contacts_by_external_id(key)
        if len(matches) > 1:
            # Documented: "If the external ID is matched multiple times, then a 300 error
            # is reported, and the record isn't created or updated"; the body lists them.
            return 300, {
                "errorCode": "DUPLICATE_EXTERNAL_ID",
                "message": f"{field}: more than one record found for external id field: "
                f"[{', '.join(m['Id'] for m in matches)}]",
                "fields": [field],
                "matches": [
                    f"/services/data/v{self.api_version}/sobjects/{sobject}/{m['Id']}"
                    for m in matches
                ],
            }
        existing = matches[0] if matches else None
        problem = self._check(sobject, clean, creating=existing is None)
        if problem is not None:
            return 400, {"errorCode": problem[0], "message": problem[1], "fields": problem[2]}
        with self._lock:
            if existing is None:
                record = self._insert(sobject, {**clean, field: key})
                return 201, {"id": record["Id"], "success": True, "errors": [], "created": True}
            changed = any(existing.get(k) != v for k, v in clean.items())
            existing.update(clean)
            if changed:
                existing["SystemModstamp"] = existing["LastModifiedDate"] = self._tick()
            return 200, {"id": existing["Id"], "success": True, "errors": [], "created": False}

    def create(self, sobject: str, values: Mapping[str, Any]) -> dict[str, Any]:
        clean = {k: v for k, v in values.items() if k != "attributes"}
        problem = self._check(sobject, clean, creating=True)
        if problem is None and sobject == "CampaignMember":
            problem = self._member_problem(clean)
        if problem is not None:
            return {
                "success": False,
                "errors": [{"statusCode": problem[0], "message": problem[1], "fields": problem[2]}],
            }
        with self._lock:
            record = self._insert(sobject, clean)
        return {"id": record["Id"], "success": True, "errors": []}

    def _member_problem(self, values: Mapping[str, Any]) -> SaveError | None:
        if values.get("CampaignId") not in self.records["Campaign"]:
            return ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["CampaignId"])
        person = values.get("ContactId") or values.get("LeadId")
        if person not in self.records["Contact"] and person not in self.records["Lead"]:
            return ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ContactId"])
        for member in self.members_of(str(values["CampaignId"])):
            if person in (member.get("ContactId"), member.get("LeadId")):
                return ("DUPLICATE_VALUE", "Already a campaign member.", [])
        return None

    # -- HTTP -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        data = f"/services/data/v{self.api_version}"
        api = [
            Route(f"{data}/query", self._query, methods=["GET"]),
            Route(f"{data}/query/{{locator}}", self._more, methods=["GET"]),
            Route(f"{data}/sobjects/{{sobject}}", self._create_one, methods=["POST"]),
            Route(
                f"{data}/sobjects/{{sobject}}/{{field}}/{{key}}",
                self._upsert_one,
                methods=["PATCH"],
            ),
            Route(f"{data}/composite/sobjects", self._collection, methods=["POST", "DELETE"]),
            Route(
                f"{data}/composite/sobjects/{{sobject}}/{{field}}",
                self._upsert_many,
                methods=["PATCH"],
            ),
            Route(f"{data}/jobs/ingest", self._job_create, methods=["POST"]),
            Route(f"{data}/jobs/ingest/{{job}}", self._job, methods=["GET", "PATCH"]),
            Route(f"{data}/jobs/ingest/{{job}}/batches", self._job_upload, methods=["PUT"]),
            Route(f"{data}/jobs/ingest/{{job}}/{{kind}}/", self._job_results, methods=["GET"]),
        ]
        routes = [Route("/services/oauth2/token", self._token, methods=["POST"])]
        routes += [Route(r.path, self._gated(r.endpoint), methods=r.methods) for r in api]
        return Starlette(routes=routes)

    def _gated(self, endpoint: Any) -> Any:
        async def handle(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in self.tokens:
                return failure(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if self.api_used >= self.api_limit:
                response: Response = failure(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            else:
                self.api_used += 1
                response = await endpoint(request)
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
            return response

        return handle

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        base = f"{request.url.scheme}://{request.url.netloc}"
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if (
                form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                    400,
                )
        elif grant == JWT_GRANT:
            refusal = self._check_assertion(form.get("assertion", ""), base)
            if refusal is not None:
                return JSONResponse({"error": "invalid_grant", "error_description": refusal}, 400)
        else:
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        token = f"00D000000000001!{uuid.uuid4().hex}"
        self.tokens.add(token)
        self.logins += 1
        return JSONResponse(
            {
                "access_token": token,
                "instance_url": base,
                "token_type": "Bearer",
                "id": f"{base}/id/00D000000000001AAA/005000000000001AAA",
                "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
                "signature": "ZmFrZQ==",
                "scope": "api",
            }
        )

    def _check_assertion(self, assertion: str, base: str) -> str | None:
        if self.public_key is None:
            return "this org has no certificate for the app"
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=base,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            return "expired authorization code"
        except jwt.PyJWTError:
            return "invalid assertion"
        if claims["iss"] != self.client_id:
            return "invalid client credentials"
        if claims["sub"] != self.username:
            return "user hasn't approved this consumer"
        if claims["exp"] > datetime.now(UTC).timestamp() + 300:
            return "invalid assertion: expiration too far in the future"
        return None

    def _shape(self, record: Mapping[str, Any], fields: list[str], sobject: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v{self.api_version}/sobjects/{sobject}/{record['Id']}",
            }
        }
        for field in fields:
            value = record.get(field)
            out[field] = sf_time(value) if isinstance(value, datetime) else value
        return out

    def _page(self, locator: str, offset: int, rows: list[dict[str, Any]], size: int) -> Response:
        page = rows[offset : offset + size]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + size >= len(rows),
            "records": page,
        }
        if not body["done"]:
            self.locators[locator] = rows
            body["nextRecordsUrl"] = (
                f"/services/data/v{self.api_version}/query/{locator}-{offset + size}"
            )
        return JSONResponse(body)

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.headers.get("sforce-query-options", "")
        found = re.search(r"batchSize=(\d+)", options)
        return min(2000, max(200, int(found.group(1)))) if found else 2000

    async def _query(self, request: Request) -> Response:
        try:
            query = parse(request.query_params.get("q", ""))
        except SoqlError as error:
            return failure(400, "MALFORMED_QUERY", str(error))
        if query.sobject not in self.records:
            return failure(400, "INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
        known = self.fields[query.sobject] | SYSTEM
        unknown = [f for f in query.fields if f not in known]
        if unknown:
            return failure(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{query.sobject}'."
            )
        try:
            rows = [r for r in self.records[query.sobject].values() if query.where(r)]
        except SoqlError as error:
            return failure(400, "MALFORMED_QUERY", str(error))
        rows.sort(key=lambda r: tuple(_sortable(r.get(f)) for f in query.order))
        if query.limit is not None:
            rows = rows[: query.limit]
        shaped = [self._shape(r, query.fields, query.sobject) for r in rows]
        return self._page(f"01g{uuid.uuid4().hex[:15]}", 0, shaped, self._batch_size(request))

    async def _more(self, request: Request) -> Response:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        rows = self.locators.get(locator)
        if rows is None or not offset.isdigit():
            return failure(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(locator, int(offset), rows, self._batch_size(request))

    async def _create_one(self, request: Request) -> Response:
        sobject = request.path_params["sobject"]
        if sobject not in self.records:
            return failure(404, "NOT_FOUND", "The requested resource does not exist")
        result = self.create(sobject, await _json(request) or {})
        if not result["success"]:
            error = result["errors"][0]
            return failure(400, error["statusCode"], error["message"], error["fields"])
        return JSONResponse(result, 201)

    async def _upsert_one(self, request: Request) -> Response:
        status, result = self.upsert(
            request.path_params["sobject"],
            request.path_params["field"],
            request.path_params["key"],
            await _json(request) or {},
        )
        if status == 300:
            return JSONResponse(result["matches"], status)
        if status >= 400:
            return JSONResponse([result], status)
        return JSONResponse(result, status)

    async def _upsert_many(self, request: Request) -> Response:
        body = await _json(request)
        records = body.get("records") if isinstance(body, Mapping) else None
        if not isinstance(records, list):
            return failure(400, "JSON_PARSER_ERROR", "records: required")
        if len(records) > 200:
            return failure(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        field, sobject = request.path_params["field"], request.path_params["sobject"]
        results = []
        for record in records:
            if (
                not isinstance(record, Mapping)
                or record.get("attributes", {}).get("type") != sobject
            ):
                results.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_TYPE",
                                "message": "attributes.type is required",
                                "fields": [],
                            }
                        ],
                    }
                )
                continue
            status, result = self.upsert(sobject, field, str(record.get(field, "")), record)
            if status >= 300:
                results.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": result["errorCode"],
                                "message": result["message"],
                                "fields": result["fields"],
                            }
                        ],
                    }
                )
            else:
                results.append(result)
        return JSONResponse(results)

    async def _collection(self, request: Request) -> Response:
        if request.method == "DELETE":
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            if not ids or len(ids) > 200:
                return failure(400, "INVALID_ID_FIELD", "ids: 1 to 200")
            results = []
            for record_id in ids:
                found = next((table for table in self.records.values() if record_id in table), None)
                if found is None:
                    results.append(
                        {
                            "id": record_id,
                            "success": False,
                            "errors": [
                                {
                                    "statusCode": "ENTITY_IS_DELETED",
                                    "message": "entity is deleted",
                                    "fields": [],
                                }
                            ],
                        }
                    )
                else:
                    del found[record_id]
                    results.append({"id": record_id, "success": True, "errors": []})
            return JSONResponse(results)
        body = await _json(request)
        records = body.get("records") if isinstance(body, Mapping) else None
        if not isinstance(records, list) or len(records) > 200:
            return failure(400, "JSON_PARSER_ERROR", "records: 1 to 200")
        results = []
        for record in records:
            sobject = (
                record.get("attributes", {}).get("type") if isinstance(record, Mapping) else None
            )
            if sobject not in self.records:
                results.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_TYPE",
                                "message": "attributes.type is required",
                                "fields": [],
                            }
                        ],
                    }
                )
            else:
                results.append(self.create(sobject, record))
        return JSONResponse(results)

    # -- Bulk API 2.0 -------------------------------------------------------------------------

    async def _job_create(self, request: Request) -> Response:
        body = await _json(request)
        if (
            not isinstance(body, Mapping)
            or body.get("operation") != "upsert"
            or not body.get("externalIdFieldName")
        ):
            return failure(
                400,
                "INVALIDJOB",
                "InvalidJob : operation and externalIdFieldName are required for upsert",
            )
        job_id = f"750{next(self._ids):012d}AAA"
        self.jobs[job_id] = {
            "id": job_id,
            "operation": "upsert",
            "object": body.get("object"),
            "externalIdFieldName": body["externalIdFieldName"],
            "state": "Open",
            "contentType": "CSV",
            "lineEnding": body.get("lineEnding", "LF"),
            "apiVersion": float(self.api_version),
            "contentUrl": f"services/data/v{self.api_version}/jobs/ingest/{job_id}/batches",
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "_csv": b"",
            "_polls": 0,
            "_ok": [],
            "_failed": [],
        }
        return JSONResponse(self._job_view(job_id))

    def _job_view(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.jobs[job_id].items() if not k.startswith("_")}

    async def _job_upload(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            return failure(404, "NOT_FOUND", "The requested resource does not exist")
        if job["state"] != "Open":
            return failure(409, "INVALIDJOBSTATE", "Job is not open for uploads")
        if not request.headers.get("content-type", "").startswith("text/csv"):
            return failure(400, "INVALIDCONTENTTYPE", "Content-Type must be text/csv")
        job["_csv"] += await request.body()
        return Response(status_code=201)

    async def _job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            return failure(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "PATCH":
            body = await _json(request)
            if not isinstance(body, Mapping) or body.get("state") not in (
                "UploadComplete",
                "Aborted",
            ):
                return failure(400, "INVALIDSTATE", "state must be UploadComplete or Aborted")
            job["state"] = body["state"]
            return JSONResponse(self._job_view(job["id"]))
        if job["state"] in ("UploadComplete", "InProgress"):
            job["_polls"] += 1
            if job["_polls"] >= 2:
                self._process(job)
            else:
                job["state"] = "InProgress"
        return JSONResponse(self._job_view(job["id"]))

    def _process(self, job: dict[str, Any]) -> None:
        rows = list(csv.DictReader(io.StringIO(job["_csv"].decode("utf-8"))))
        field = job["externalIdFieldName"]
        for row in rows:
            values = {k: v for k, v in row.items() if v != ""}
            status, result = self.upsert(job["object"], field, row.get(field, ""), values)
            if status >= 300:
                job["_failed"].append(("", f"{result['errorCode']}:{result['message']}", row))
            else:
                job["_ok"].append((result["id"], "true" if result["created"] else "false", row))
        job.update(
            state="JobComplete",
            numberRecordsProcessed=len(rows),
            numberRecordsFailed=len(job["_failed"]),
        )

    async def _job_results(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        kind = request.path_params["kind"]
        if job is None or kind not in ("successfulResults", "failedResults"):
            return failure(404, "NOT_FOUND", "The requested resource does not exist")
        entries = job["_ok"] if kind == "successfulResults" else job["_failed"]
        second = "sf__Created" if kind == "successfulResults" else "sf__Error"
        out = io.StringIO()
        columns = list(entries[0][2]) if entries else []
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sf__Id", second, *columns])
        for record_id, extra, row in entries:
            writer.writerow([record_id, extra, *[row.get(c, "") for c in columns]])
        return Response(out.getvalue(), media_type="text/csv")


def _sortable(value: Any) -> Any:
    return (value is not None, value if value is not None else "")


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
