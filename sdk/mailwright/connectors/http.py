"""HTTP for connectors: one async client per provider, with retries done once and right.

Every connector talks to its provider through `ProviderHttp`:

    http = ProviderHttp("hubspot", "https://api.hubapi.com",
                        headers={"Authorization": f"Bearer {token}"},
                        describe=hubspot_error_message, classify=hubspot_verdict)
    response = await http.request("GET", "/crm/v3/objects/contacts", params={...})

A request is retried on 429 and 5xx answers and on network failures, waiting what the
provider's `Retry-After` says or, without one, an exponential backoff with full jitter
(a random wait between 0 and `base * 2**n`, capped). A connector adds what its provider
documents through `classify`: a 200 that is really a throttle (Shopify GraphQL), a 429
that must not be retried (HubSpot's daily limit). When the attempts run out, or the
answer is final (401, 400 …), `ProviderError` is raised with the kind the host acts on
and the provider's own message, redacted of addresses.

Log lines carry the provider, method, path (never the query string: some providers put
keys there), status and attempt; never headers or bodies.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from mailwright.connectors.errors import ErrorKind, ProviderError

log = logging.getLogger(__name__)

sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
"""How `ProviderHttp` and `Pacer` wait; looked up at each wait, so the test kit can record
waits instead of sleeping them (`mailwright.testing.fakes.recorded_waits`)."""

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    """How a request is retried.

    `attempts` is the number of tries in all (1: no retry). Without a `Retry-After`, the
    n-th retry waits a random time between 0 and `min(cap, base * 2**(n-1))` seconds
    (full jitter, so clients that failed together do not retry together). A provider that
    asks for a wait longer than `max_wait` is not waited for: the request fails at once
    with `RATE_LIMITED` and that `retry_after`, so a sync stops instead of hanging.
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0 or self.max_wait < 0:
            raise ValueError("base, cap and max_wait must not be negative")

    def delay(self, retry: int) -> float:
        """The jittered wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.cap, self.base * 2 ** min(retry - 1, 62))
        return random.uniform(0, ceiling)


@dataclass(frozen=True)
class Retry:
    """A connector's verdict on an answer: try again, after `after` seconds if given.

    `kind` and `code` say what to raise when the attempts run out (`RATE_LIMITED` and
    `"429"` for a throttle); `detail` is the provider's explanation.
    """

    kind: ErrorKind = ErrorKind.TRANSIENT
    detail: str = ""
    after: float | None = None
    code: str | None = None


@dataclass(frozen=True)
class Fail:
    """A connector's verdict on an answer: it is final, raise `error`."""

    error: ProviderError


Verdict = Retry | Fail | None
"""`None` accepts the response; `Retry` retries it; `Fail` raises."""

Classifier = Callable[[httpx.Response], Verdict]
Describer = Callable[[httpx.Response], str]


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The wait a `Retry-After` header asks for, in seconds: delay-seconds or an HTTP date.

    Fractions are accepted (some providers send them); nonsense and negative values give
    None, so the caller backs off instead.
    """
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def body_text(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body as text, for error messages (redacted later)."""
    try:
        text = response.content[: limit * 4].decode("utf-8", errors="replace")
    except httpx.ResponseNotRead:
        return ""
    return " ".join(text.split())[:limit]


def default_verdict(response: httpx.Response, detail: str) -> Verdict:
    """What an HTTP status means when the connector has nothing more specific to say."""
    status = response.status_code
    code = str(status)
    if status == 429:
        return Retry(ErrorKind.RATE_LIMITED, detail, retry_after(response), code)
    if status in RETRYABLE_STATUSES or status >= 500:
        return Retry(ErrorKind.TRANSIENT, detail, retry_after(response), code)
    if status in (401, 403):
        return Fail(ProviderError(ErrorKind.AUTH, f"HTTP {status}: {detail}", code=code))
    if status >= 400:
        return Fail(ProviderError(ErrorKind.INVALID, f"HTTP {status}: {detail}", code=code))
    return None


class Pacer:
    """A token bucket that spaces requests to a provider's documented rate.

    `await pacer.take()` returns at once while tokens last, then waits for the next one.
    Per process: several replicas of a sync each get the full rate, which is why the
    server-side 429 handling stays in place.
    """

    def __init__(self, per_second: float, burst: int = 1) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.per_second
                await sleep(wait)
                self._stamp = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1


class ProviderHttp:
    """An async HTTP client for one provider, with retries, pacing and error mapping.

    `describe(response)` extracts the provider's error message from an answer (its JSON
    error body); `classify(response)` returns a verdict for answers the provider documents
    specially, or None to let the status decide (`default_verdict`). `pacer` spaces every
    request; `request(..., pacer=…)` adds one for an endpoint with a lower limit.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        classify: Classifier | None = None,
        describe: Describer | None = None,
        pacer: Pacer | None = None,
        max_connections: int = 10,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.backoff = backoff or Backoff()
        self._classify = classify
        self._describe = describe or body_text
        self._pacer = pacer
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        classify: Classifier | None = None,
        pacer: Pacer | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send a request and return the accepted response, retrying as documented.

        `classify` overrides the client's classifier for this request. A request that is
        not `idempotent` is retried only when the provider cannot have acted on it: a
        connection that never opened, a 429, a 503.
        """
        path = urlsplit(url).path or url
        attempt = 0
        while True:
            attempt += 1
            for limiter in (self._pacer, pacer):
                if limiter is not None:
                    await limiter.take()
            try:
                response = await self._client.request(
                    method, url, params=params, json=json, content=content, headers=headers
                )
            except httpx.HTTPError as error:
                verdict: Verdict = self._network_verdict(error, idempotent)
                status = type(error).__name__
            else:
                verdict = self._verdict(response, classify)
                status = str(response.status_code)
                if verdict is None:
                    return response
                unsafe = not idempotent and response.status_code not in (429, 503)
                if isinstance(verdict, Retry) and unsafe:
                    final = ProviderError(verdict.kind, verdict.detail, code=verdict.code)
                    verdict = Fail(final)
            if isinstance(verdict, Fail):
                log.warning("%s %s %s failed: %s", self.provider, method, path, status)
                raise verdict.error
            assert verdict is not None
            wait = self._wait(verdict, attempt, method, path, status)
            await sleep(wait)

    async def get_json(self, url: str, **options: Any) -> Any:
        """GET `url` and decode its JSON body (`ProviderError(TRANSIENT)` if it is not)."""
        return self.decode(await self.request("GET", url, **options))

    async def post_json(self, url: str, body: Any, **options: Any) -> Any:
        """POST `body` as JSON to `url` and decode the JSON answer."""
        return self.decode(await self.request("POST", url, json=body, **options))

    def decode(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"{self.provider} answered {response.status_code} with a body that is not JSON",
                code=str(response.status_code),
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- internals --------------------------------------------------------------------

    def _verdict(self, response: httpx.Response, classify: Classifier | None) -> Verdict:
        chosen = classify or self._classify
        if chosen is not None:
            verdict = chosen(response)
            if verdict is not None:
                return verdict
        if response.is_success:
            return None
        return default_verdict(response, self._describe(response))

    def _network_verdict(self, error: httpx.HTTPError, idempotent: bool) -> Verdict:
        detail = f"{self.provider} unreachable: {type(error).__name__}"
        never_sent = isinstance(
            error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
        )
        if isinstance(error, httpx.TransportError) and (idempotent or never_sent):
            return Retry(ErrorKind.TRANSIENT, detail)
        return Fail(ProviderError(ErrorKind.TRANSIENT, detail))

    def _wait(self, verdict: Retry, attempt: int, method: str, path: str, status: str) -> float:
        retry_in = verdict.after
        if retry_in is not None and retry_in > self.backoff.max_wait:
            raise ProviderError(
                verdict.kind,
                f"{self.provider} asks to wait {retry_in:.0f}s, longer than the "
                f"{self.backoff.max_wait:.0f}s this connector waits: {verdict.detail}",
                retry_after=timedelta(seconds=retry_in),
                code=verdict.code,
            )
        if attempt >= self.backoff.attempts:
            log.warning(
                "%s %s %s: %s, giving up after %d attempts",
                self.provider,
                method,
                path,
                status,
                attempt,
            )
            raise ProviderError(
                verdict.kind,
                f"{self.provider} still failing after {attempt} attempts: {verdict.detail}",
                retry_after=timedelta(seconds=retry_in) if retry_in is not None else None,
                code=verdict.code,
            )
        wait = retry_in if retry_in is not None else self.backoff.delay(attempt)
        log.info(
            "%s %s %s: %s, retry %d of %d in %.2fs",
            self.provider,
            method,
            path,
            status,
            attempt,
            self.backoff.attempts - 1,
            wait,
        )
        return wait
