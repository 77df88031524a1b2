"""HTTP to a Salesforce org: its session, its error bodies, its daily API allowance.

- The session comes from `auth.TokenSource`; the API lives at the token's `instance_url`
  under `/services/data/v<api_version>`. A 401 `INVALID_SESSION_ID` (the session expired or
  was revoked) fetches a new token once and repeats the request.
- Errors are arrays `[{"message", "errorCode", "fields"}]`; a `ProviderError` carries
  `errorCode: message (fields)` and the `errorCode` as its code.
- Every answer carries `Sforce-Limit-Info: api-usage=N/M` (requests used in the last 24
  hours of the org's allowance). Past `api_usage_slow` of it, requests are spaced by
  `slow_interval`; at `api_usage_stop` the connector stops with `RATE_LIMITED`
  (`code="API_USAGE"`), leaving the rest to the org's other integrations.
- `REQUEST_LIMIT_EXCEEDED` (403) is the org out of requests (`TotalRequests Limit
  exceeded`): final, `RATE_LIMITED`, with that message. The same code for too many
  long-running requests at once (`ConcurrentPerOrgLongTxn`) is retried with backoff.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors import http as connector_http
from mailwright.connectors.http import Backoff, Fail, ProviderHttp, Retry, Verdict, body_text
from mailwright_salesforce.auth import Token, TokenSource
from mailwright_salesforce.config import SalesforceConfig

log = logging.getLogger(__name__)

LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def errors(response: httpx.Response) -> list[Mapping[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, Mapping):
        body = [body]
    return [e for e in body if isinstance(e, Mapping)] if isinstance(body, list) else []


def error_message(response: httpx.Response) -> str:
    found = errors(response)
    if not found:
        return body_text(response)
    first = found[0]
    text = f"{first.get('errorCode', 'ERROR')}: {first.get('message', '')}"
    fields = first.get("fields")
    if isinstance(fields, list) and fields:
        text += f" ({', '.join(str(f) for f in fields[:10])})"
    return text


def error_code(response: httpx.Response) -> str | None:
    found = errors(response)
    code = found[0].get("errorCode") if found else None
    return code if isinstance(code, str) else None


def verdict(response: httpx.Response) -> Verdict:
    code = error_code(response)
    if code == "REQUEST_LIMIT_EXCEEDED":
        detail = error_message(response)
        if "ConcurrentPerOrgLongTxn" in detail or "Concurrent" in detail:
            return Retry(ErrorKind.RATE_LIMITED, detail, code=code)
        return Fail(
            ProviderError(
                ErrorKind.RATE_LIMITED,
                "the Salesforce org has used its API requests of the last 24 hours; syncs "
                f"resume as the rolling window frees requests ({detail})",
                code=code,
            )
        )
    if response.status_code == 401:
        return Fail(ProviderError(ErrorKind.AUTH, error_message(response), code=code or "401"))
    if response.status_code == 404 and code:
        return Fail(ProviderError(ErrorKind.INVALID, error_message(response), code=code))
    if 400 <= response.status_code < 500 and code and response.status_code != 429:
        kind = ErrorKind.AUTH if response.status_code == 403 else ErrorKind.INVALID
        return Fail(ProviderError(kind, error_message(response), code=code))
    return None


class SalesforceHttp:
    """The org's REST client: a session refreshed when it expires, usage kept in check."""

    def __init__(self, config: SalesforceConfig, needed_by: str) -> None:
        self.config = config
        self.tokens = TokenSource(config, needed_by)
        self._token: Token | None = None
        self._http: ProviderHttp | None = None
        self.usage: tuple[int, int] | None = None
        self.slowed = 0

    @property
    def data(self) -> str:
        return f"/services/data/v{self.config.api_version}"

    async def _session(self, refresh: bool = False) -> tuple[Token, ProviderHttp]:
        if self._token is None or refresh:
            self._token = await self.tokens.fetch()
            if self._http is None or self._http.base_url.rstrip("/") != self._token.instance_url:
                if self._http is not None:
                    await self._http.aclose()
                self._http = ProviderHttp(
                    "salesforce",
                    self._token.instance_url,
                    timeout=self.config.timeout.total_seconds(),
                    backoff=Backoff(
                        attempts=self.config.retries,
                        max_wait=self.config.max_retry_wait.total_seconds(),
                    ),
                    classify=verdict,
                    describe=error_message,
                )
        assert self._http is not None
        return self._token, self._http

    async def _check_usage(self) -> None:
        if self.usage is None or self.usage[1] <= 0:
            return
        used, allowed = self.usage
        share = used / allowed
        if share >= self.config.api_usage_stop:
            raise ProviderError(
                ErrorKind.RATE_LIMITED,
                f"Salesforce API usage is at {used} of {allowed} requests a day; stopping at "
                f"{self.config.api_usage_stop:.0%} to leave the rest to the org",
                code="API_USAGE",
            )
        if share >= self.config.api_usage_slow:
            self.slowed += 1
            await connector_http.sleep(self.config.slow_interval.total_seconds())

    def _note_usage(self, response: httpx.Response) -> None:
        found = LIMIT_INFO.search(response.headers.get("sforce-limit-info", ""))
        if found is not None:
            self.usage = (int(found.group(1)), int(found.group(2)))

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send a request to the org (a path under the instance), refreshing the session once."""
        await self._check_usage()
        token, http = await self._session()
        for attempt in (1, 2):
            headers = {
                **options.pop("headers", {}),
                "Authorization": f"Bearer {token.access_token}",
            }
            try:
                response = await http.request(method, url, headers=headers, **options)
            except ProviderError as error:
                if error.code == "INVALID_SESSION_ID" and attempt == 1:
                    log.info("salesforce session expired; logging in again")
                    token, http = await self._session(refresh=True)
                    options["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
                    continue
                raise
            self._note_usage(response)
            return response
        raise AssertionError("unreachable")

    async def json(self, method: str, url: str, **options: Any) -> Any:
        response = await self.request(method, url, **options)
        if self._http is None:
            raise ProviderError(ErrorKind.TRANSIENT, "no session")
        return self._http.decode(response)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.tokens.aclose()


def soql_string(value: str) -> str:
    """`value` as a quoted SOQL string literal (backslash escapes)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"
