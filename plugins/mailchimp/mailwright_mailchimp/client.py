"""HTTP to the Mailchimp Marketing API: its authentication, error bodies and concurrency.

- Authentication is HTTP Basic with any user name and the API key as password; the key's
  suffix names the data centre (`…-us21` → `https://us21.api.mailchimp.com/3.0`).
- Errors are problem documents (`application/problem+json`): `type`, `title`, `status`,
  `detail`, `instance`, and for invalid resources `errors: [{field, message}]`. The
  message a `ProviderError` carries is `title: detail (field: message; …)`.
- Mailchimp limits each user to **ten simultaneous connections** and answers 429 beyond.
  `MailchimpHttp` holds a semaphore of `max_connections` (at most 10) around every
  request, on top of an HTTP pool of the same size, so no burst of this process can pass
  it; 429s that other apps of the same user cause are retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import httpx

from mailwright.connectors.errors import ErrorKind, ProviderError
from mailwright.connectors.http import Backoff, Fail, ProviderHttp, Retry, Verdict, body_text
from mailwright_mailchimp.config import MailchimpConfig

REFUSED_TITLES = frozenset({"Member In Compliance State", "Forgotten Email Not Subscribed"})
"""Problem titles of a person Mailchimp will not add: unsubscribed, bounced or under
compliance review, or permanently deleted (GDPR) and only able to re-subscribe themselves."""


def problem(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def error_message(response: httpx.Response) -> str:
    """`title: detail (field: message; …)` from Mailchimp's problem document."""
    body = problem(response)
    title, detail = body.get("title"), body.get("detail")
    if not isinstance(title, str):
        return body_text(response)
    text = f"{title}: {detail}" if isinstance(detail, str) and detail else title
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        fields = "; ".join(
            f"{e.get('field') or '(request)'}: {e.get('message', '')}"
            for e in errors[:5]
            if isinstance(e, Mapping)
        )
        text += f" ({fields})"
    return text


def verdict(response: httpx.Response) -> Verdict:
    if response.status_code == 429:
        # Mailchimp sends no Retry-After: back off with jitter.
        return Retry(ErrorKind.RATE_LIMITED, error_message(response), code="429")
    if response.status_code == 400 and problem(response).get("title") in REFUSED_TITLES:
        # The person cannot be (re)added, whatever the request: not a wrong request.
        detail = error_message(response)
        return Fail(ProviderError(ErrorKind.REJECTED, detail, code="400"))
    return None


def basic_auth(api_key: str) -> str:
    token = base64.b64encode(f"mailwright:{api_key}".encode()).decode()
    return f"Basic {token}"


class MailchimpHttp:
    """One account's Marketing API client, never more than `max_connections` at once."""

    def __init__(self, config: MailchimpConfig, needed_by: str) -> None:
        self.limit = config.max_connections
        self.http = ProviderHttp(
            "mailchimp",
            config.api_root(needed_by),
            headers={"Authorization": basic_auth(config.key(needed_by))},
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(
                attempts=config.retries, max_wait=config.max_retry_wait.total_seconds()
            ),
            classify=verdict,
            describe=error_message,
            max_connections=config.max_connections,
        )
        # Batch results live on a storage host: no credentials go there.
        self.downloads = ProviderHttp(
            "mailchimp",
            "http://results.invalid",
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(attempts=config.retries),
            max_connections=2,
        )
        self._slots = asyncio.Semaphore(config.max_connections)
        self.in_flight = 0
        self.most_in_flight = 0

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        async with self._slots:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                return await self.http.request(method, path, **options)
            finally:
                self.in_flight -= 1

    async def json(self, method: str, path: str, **options: Any) -> Any:
        return self.http.decode(await self.request(method, path, **options))

    async def download(self, url: str, limit: int) -> bytes:
        """The body at an absolute `url` (a batch's results), at most `limit` bytes."""
        async with self._slots:
            response = await self.downloads.request("GET", url)
        if len(response.content) > limit:
            raise ValueError(f"batch results are larger than {limit} bytes")
        return response.content

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.downloads.aclose()
