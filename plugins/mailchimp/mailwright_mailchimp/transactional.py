"""Mailchimp Transactional (Mandrill) as an email provider.

A message goes to `POST /messages/send-raw` as the MIME render built (`raw_message`), or
to `POST /messages/send` as fields (`html`, `text`, `subject`, `from_email`, `to`,
`headers`, `tags`, `metadata`) when there is no MIME. The API key travels in the JSON
body (`key`), as Mandrill asks. The send id rides along as metadata —
`metadata.mailwright_send_id`, or an `X-MC-Metadata` header prepended to the raw MIME —
and comes back in every webhook event of that message.

The answer is one result per recipient: `status` `sent`, `queued` or `scheduled` is an
acceptance (the provider message id is `_id`); `rejected` and `invalid` are refusals,
mapped by `reject_reason`:

| `reject_reason` | `ErrorKind` | suppress? |
|---|---|---|
| `hard-bounce` | `hard_bounce` | yes (hard bounce) |
| `soft-bounce` | `soft_bounce` | after N, as the host does |
| `spam` | `rejected` | yes (complaint) |
| `unsub` | `rejected` | yes (unsubscribed) |
| `custom`, `rule`, `invalid-sender`, `unsigned`, `test-mode-limit` | `rejected` | no |
| `invalid` (or status `invalid`) | `invalid` | no |

The error's `code` is `reject:<reason>`; `SUPPRESSIONS` says which reasons suppress.
Errors are `{"status": "error", "code", "name", "message"}` (with HTTP 500 for most):
`Invalid_Key`, `PaymentRequired` → `auth`; `ValidationError`, `Unknown_Subaccount`,
`Unknown_Template`, `Unknown_Sender` … → `invalid`; `ServiceUnavailable`, `GeneralError`
→ retried as `transient`. A 429 is waited out (`Retry-After` when sent). Mandrill does
not deduplicate sends: a retry after a lost answer can send twice, which is why delivery
only retries what `retryable` says.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mailwright.connectors import (
    ErrorKind,
    OutboundMessage,
    ProviderError,
    RateLimit,
    SendOutcome,
)
from mailwright.connectors.http import (
    Backoff,
    Fail,
    ProviderHttp,
    Retry,
    Verdict,
    body_text,
    retry_after,
)
from mailwright_mailchimp.config import TransactionalConfig

log = logging.getLogger(__name__)

ACCEPTED = frozenset({"sent", "queued", "scheduled"})
REJECT_KINDS: Mapping[str, ErrorKind] = {
    "hard-bounce": ErrorKind.HARD_BOUNCE,
    "soft-bounce": ErrorKind.SOFT_BOUNCE,
    "spam": ErrorKind.REJECTED,
    "unsub": ErrorKind.REJECTED,
    "custom": ErrorKind.REJECTED,
    "invalid-sender": ErrorKind.REJECTED,
    "invalid": ErrorKind.INVALID,
    "test-mode-limit": ErrorKind.REJECTED,
    "unsigned": ErrorKind.REJECTED,
    "rule": ErrorKind.REJECTED,
}
SUPPRESSIONS: Mapping[str, str] = {
    "hard-bounce": "hard_bounce",
    "spam": "complaint",
    "unsub": "unsubscribed",
}
"""Reject reasons after which the address must not be mailed again, and why."""
ERROR_KINDS: Mapping[str, ErrorKind] = {
    "Invalid_Key": ErrorKind.AUTH,
    "PaymentRequired": ErrorKind.AUTH,
    "ValidationError": ErrorKind.INVALID,
    "Unknown_Subaccount": ErrorKind.INVALID,
    "Unknown_Template": ErrorKind.INVALID,
    "Unknown_Sender": ErrorKind.INVALID,
    "Invalid_Template": ErrorKind.INVALID,
    "Metadata_FieldLimit": ErrorKind.INVALID,
    "Unknown_MetadataField": ErrorKind.INVALID,
    "Unknown_Pool": ErrorKind.INVALID,
    "ServiceUnavailable": ErrorKind.TRANSIENT,
    "GeneralError": ErrorKind.TRANSIENT,
}
MAX_METADATA_BYTES = 1000


def error_body(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) and body.get("status") == "error" else {}


def error_message(response: httpx.Response) -> str:
    body = error_body(response)
    if not body:
        return body_text(response)
    return f"{body.get('name', 'Error')}: {body.get('message', '')}"


def verdict(response: httpx.Response) -> Verdict:
    """Mandrill's errors are read by `name`, whatever the HTTP status (mostly 500)."""
    if response.status_code == 429:
        return Retry(ErrorKind.RATE_LIMITED, error_message(response), retry_after(response), "429")
    body = error_body(response)
    if not body:
        return None
    name = str(body.get("name", ""))
    kind = ERROR_KINDS.get(name)
    if kind is None:
        kind = (
            ErrorKind.TRANSIENT if response.status_code >= 500 and not name else ErrorKind.INVALID
        )
    detail = error_message(response)
    if kind is ErrorKind.TRANSIENT:
        return Retry(kind, detail, retry_after(response), name or str(response.status_code))
    return Fail(ProviderError(kind, detail, code=name or str(response.status_code)))


def refusal(result: Mapping[str, Any]) -> ProviderError:
    status = str(result.get("status", ""))
    reason = str(result.get("reject_reason") or ("invalid" if status == "invalid" else "custom"))
    kind = REJECT_KINDS.get(reason, ErrorKind.REJECTED)
    return ProviderError(
        kind,
        f"Mailchimp Transactional {status} the message: {reason}",
        code=f"reject:{reason}",
        suppress=SUPPRESSIONS.get(reason),
    )


class TransactionalEmailProvider:
    """The email provider capability: one Mailchimp Transactional account."""

    max_batch_size = 100

    def __init__(self, config: TransactionalConfig) -> None:
        self.config = config
        self._key = config.key("email provider")
        self.http = ProviderHttp(
            "mailchimp-transactional",
            config.base_url,
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(
                attempts=config.retries, max_wait=config.max_retry_wait.total_seconds()
            ),
            classify=verdict,
            describe=error_message,
            max_connections=config.concurrency,
        )
        self.rate_limit = RateLimit(
            per_second=config.rate_per_second,
            burst=max(1, int(config.rate_per_second)),
            concurrency=config.concurrency,
        )
        self._slots = asyncio.Semaphore(config.concurrency)

    def metadata(self, message: OutboundMessage) -> dict[str, str]:
        values = {"mailwright_send_id": message.send_id}
        if message.workspace:
            values["mailwright_workspace"] = message.workspace
        if len(json.dumps(values).encode()) > MAX_METADATA_BYTES:
            raise ProviderError(ErrorKind.INVALID, "send id too long for Mandrill metadata")
        return values

    def fields_request(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        from_name, from_email = email.utils.parseaddr(message.from_address)
        to_name, to_email = email.utils.parseaddr(message.to_address)
        body: dict[str, Any] = {
            "subject": message.subject,
            "from_email": from_email,
            "to": [{"email": to_email, "type": "to", **({"name": to_name} if to_name else {})}],
            "headers": dict(message.headers.items()),
            "tags": list(message.tags),
            "metadata": self.metadata(message),
        }
        if from_name:
            body["from_name"] = from_name
        if message.html is not None:
            body["html"] = message.html
        if message.text is not None:
            body["text"] = message.text
        for option in ("track_opens", "track_clicks"):
            if getattr(self.config, option) is not None:
                body[option] = getattr(self.config, option)
        if self.config.subaccount:
            body["subaccount"] = self.config.subaccount
        return "/messages/send", {"key": self._key, "message": body, "async": False}

    def raw_request(self, message: OutboundMessage, mime: bytes) -> tuple[str, dict[str, Any]]:
        from_name, from_email = email.utils.parseaddr(message.from_address)
        _, to_email = email.utils.parseaddr(message.to_address)
        added = f"X-MC-Metadata: {json.dumps(self.metadata(message))}\r\n"
        if message.tags:
            added += f"X-MC-Tags: {','.join(message.tags)}\r\n"
        body: dict[str, Any] = {
            "key": self._key,
            "raw_message": added + mime.decode("utf-8"),
            "from_email": from_email,
            "to": [to_email],
            "async": False,
        }
        if from_name:
            body["from_name"] = from_name
        if self.config.subaccount:
            body["subaccount"] = self.config.subaccount
        return "/messages/send-raw", body

    def request(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        if message.mime is not None and self.config.send_raw:
            try:
                return self.raw_request(message, message.mime)
            except UnicodeDecodeError:
                pass  # 8-bit MIME that is not UTF-8: send the fields instead
        if message.html is None and message.text is None:
            raise ProviderError(ErrorKind.INVALID, "the MIME is not UTF-8 and there is no body")
        return self.fields_request(message)

    async def send(self, message: OutboundMessage) -> str:
        path, body = self.request(message)
        async with self._slots:
            answer = self.http.decode(
                await self.http.request("POST", path, json=body, idempotent=False)
            )
        results = [r for r in answer if isinstance(r, Mapping)] if isinstance(answer, list) else []
        if not results:
            raise ProviderError(ErrorKind.TRANSIENT, "Mailchimp Transactional answered no result")
        result = results[0]
        if result.get("status") not in ACCEPTED:
            raise refusal(result)
        provider_id = result.get("_id")
        if not isinstance(provider_id, str) or not provider_id:
            raise ProviderError(ErrorKind.TRANSIENT, "Mailchimp Transactional answered no _id")
        log.info("mailchimp-transactional accepted send %s as %s", message.send_id, provider_id)
        return provider_id

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> Sequence[SendOutcome]:
        async def one(message: OutboundMessage) -> SendOutcome:
            try:
                return SendOutcome(message.send_id, provider_message_id=await self.send(message))
            except ProviderError as error:
                if error.kind is ErrorKind.AUTH:
                    raise
                return SendOutcome(message.send_id, error=error)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(m)) for m in messages]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def aclose(self) -> None:
        await self.http.aclose()
