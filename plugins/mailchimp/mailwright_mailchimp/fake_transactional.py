"""A local Mailchimp Transactional (Mandrill) API, as documented, and its signed webhooks.

`FakeTransactional.app()` serves under `/api/1.0`:

- `POST /messages/send` — `{"key", "message": {html, text, subject, from_email, to,
  headers, tags, metadata}}`; `POST /messages/send-raw` — `{"key", "raw_message",
  "from_email", "to"}` (metadata read from the raw `X-MC-Metadata` header);
- each answers one result per recipient: `{"email", "status", "reject_reason", "_id"}`
  — `sent`, or `rejected` with the reason set by `reject(address, reason)`, or `invalid`
  for an address that is not one;
- errors are `{"status": "error", "code", "name", "message"}` with HTTP 500:
  `Invalid_Key` (code -1) for a wrong key, `ValidationError` (code -2) for a bad request.

`delivery(events)` builds a webhook request body and its `X-Mandrill-Signature`;
`message_event(kind, …)` builds one message event as Mandrill formats it.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailwright_mailchimp.transactional_webhook import signature

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def error(name: str, code: int, message: str) -> JSONResponse:
    body = {"status": "error", "code": code, "name": name, "message": message}
    return JSONResponse(body, status_code=500)


class FakeTransactional:
    """One Mailchimp Transactional account: what it sent, what it refuses."""

    def __init__(
        self,
        *,
        api_key: str = "md-fake-transactional-key",
        webhook_key: str = "fake-webhook-key-1234",
    ) -> None:
        self.api_key = api_key
        self.webhook_key = webhook_key
        self.sent: list[dict[str, Any]] = []
        self.rejections: dict[str, str] = {}
        self.malformed: set[str] = set()
        self._lock = threading.Lock()

    def reject(self, address: str, reason: str) -> None:
        """Answer sends to `address` with `status: rejected` and this `reject_reason`."""
        self.rejections[address.strip().lower()] = reason

    def refuse_request(self, address: str) -> None:
        """Answer sends to `address` with a `ValidationError`."""
        self.malformed.add(address.strip().lower())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/1.0/messages/send", self._send, methods=["POST"]),
                Route("/api/1.0/messages/send.json", self._send, methods=["POST"]),
                Route("/api/1.0/messages/send-raw", self._send_raw, methods=["POST"]),
                Route("/api/1.0/messages/send-raw.json", self._send_raw, methods=["POST"]),
            ]
        )

    async def _body(self, request: Request) -> Mapping[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error("ValidationError", -2, "You must specify a key value")
        if not isinstance(body, Mapping) or body.get("key") != self.api_key:
            return error("Invalid_Key", -1, "Invalid API key")
        return body

    def _results(self, recipients: Sequence[str], record: dict[str, Any]) -> Response:
        if any(r.strip().lower() in self.malformed for r in recipients):
            return error(
                "ValidationError",
                -2,
                'Validation error: {"message":{"to":"Please enter an array"}}',
            )
        results: list[dict[str, Any]] = []
        for recipient in recipients:
            address = recipient.strip().lower()
            message_id = uuid.uuid4().hex
            if not ADDRESS.match(address):
                results.append({"email": recipient, "status": "invalid", "_id": message_id})
            elif address in self.rejections:
                results.append(
                    {
                        "email": recipient,
                        "status": "rejected",
                        "reject_reason": self.rejections[address],
                        "_id": message_id,
                    }
                )
            else:
                with self._lock:
                    self.sent.append({**record, "to": address, "_id": message_id})
                results.append(
                    {"email": recipient, "status": "sent", "reject_reason": None, "_id": message_id}
                )
        return JSONResponse(results)

    async def _send(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        message = body.get("message")
        to = message.get("to") if isinstance(message, Mapping) else None
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(r, Mapping) and isinstance(r.get("email"), str) for r in to)
        ):
            return error(
                "ValidationError",
                -2,
                'Validation error: {"message":{"to":"Please enter an array"}}',
            )
        assert isinstance(message, Mapping)
        if not isinstance(message.get("from_email"), str) or "@" not in message["from_email"]:
            return error(
                "ValidationError",
                -2,
                'Validation error: {"message":{"from_email":'
                '"An email address must contain a single @"}}',
            )
        record = {
            "subject": message.get("subject"),
            "metadata": message.get("metadata") or {},
            "tags": message.get("tags") or [],
            "raw": None,
        }
        return self._results([r["email"] for r in to], record)

    async def _send_raw(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        raw = body.get("raw_message")
        if not isinstance(raw, str) or not raw:
            return error(
                "ValidationError", -2, 'Validation error: {"raw_message":"Please enter a value"}'
            )
        parsed = email.message_from_string(raw, policy=email.policy.default)
        to = body.get("to") or [str(a) for a in parsed.get_all("To", [])]
        if not isinstance(to, list) or not to:
            return error("ValidationError", -2, 'Validation error: {"to":"Please enter an array"}')
        metadata = json.loads(str(parsed["X-MC-Metadata"])) if parsed["X-MC-Metadata"] else {}
        record = {
            "subject": str(parsed["Subject"] or ""),
            "metadata": metadata,
            "tags": str(parsed["X-MC-Tags"] or "").split(",") if parsed["X-MC-Tags"] else [],
            "raw": raw,
        }
        return self._results([str(r) for r in to], record)

    # -- webhooks -----------------------------------------------------------------------

    def message_event(
        self,
        kind: str,
        recipient: str,
        *,
        message_id: str | None = None,
        send_id: str | None = None,
        ts: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """One message event (`send`, `hard_bounce`, `open`, `click` …) as Mandrill posts it."""
        when = int((ts or datetime.now(UTC)).timestamp())
        ident = message_id or uuid.uuid4().hex
        msg: dict[str, Any] = {
            "ts": when - 5,
            "_id": ident,
            "state": {
                "hard_bounce": "bounced",
                "soft_bounce": "soft-bounced",
                "reject": "rejected",
            }.get(kind, "sent"),
            "subject": "Your order",
            "email": recipient,
            "sender": "shop@shop.example",
            "tags": ["receipt"],
            "opens": [],
            "clicks": [],
            "metadata": {"mailwright_send_id": send_id} if send_id else {},
            "_version": "exampleaaaaaaaaaaaaaaa",
        }
        if kind in ("hard_bounce", "soft_bounce"):
            msg.update(
                bounce_description="bad_mailbox",
                bgtools_code=10,
                diag=f"smtp;550 5.1.1 <{recipient}>: Recipient address rejected",
            )
        event: dict[str, Any] = {"event": kind, "_id": ident, "msg": msg, "ts": when}
        if kind == "click":
            event["url"] = "https://shop.example/cart"
        event.update(extra)
        return event

    def delivery(
        self, events: Sequence[Mapping[str, Any]], *, url: str, key: str | None = None
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """A webhook body carrying `events`, and its headers, signed for `url`."""
        params = {"mandrill_events": json.dumps(list(events))}
        return self.signed(urlencode(params).encode(), url=url, key=key)

    def signed(
        self, body: bytes, *, url: str, key: str | None = None
    ) -> tuple[bytes, list[tuple[str, str]]]:
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Mandrill-Signature", signature(key or self.webhook_key, url, params)),
            ("User-Agent", "Mandrill-Webhook/1.0"),
        ]
        return body, headers
