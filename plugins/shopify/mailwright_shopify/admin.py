"""The Shopify Admin GraphQL API, as the source uses it.

Shopify recommends the GraphQL Admin API (the REST Admin API is legacy since October 2024
and closed to new public apps since April 2025). Its rate limit is a leaky bucket of
query cost per app and store (`extensions.cost.throttleStatus`: `maximumAvailable`,
`currentlyAvailable`, `restoreRate`); a query that costs more than is available answers
`{"errors": [{"extensions": {"code": "THROTTLED"}}]}`. This client

- waits before a query when the bucket (as last reported) cannot pay for it;
- retries a throttled query after `(requested - available) / restoreRate` seconds;
- retries 429 (with `Retry-After`) and 5xx through `mailwright.connectors.http`;
- maps `{"errors": ...}` bodies and GraphQL error codes to `ProviderError`s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors import http as connector_http
from mailwright.connectors.http import Backoff, Fail, ProviderHttp, Retry, Verdict, body_text
from mailwright_shopify.config import ShopifyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottleStatus:
    maximum: float
    available: float
    restore_rate: float

    def after(self, seconds: float) -> ThrottleStatus:
        """The bucket as it will be `seconds` later (it refills at `restore_rate`)."""
        refilled = min(self.maximum, self.available + max(seconds, 0.0) * self.restore_rate)
        return ThrottleStatus(self.maximum, refilled, self.restore_rate)

    def wait_for(self, cost: float) -> float:
        """Seconds until the bucket holds `cost` points."""
        if cost <= self.available or self.restore_rate <= 0:
            return 0.0
        return (min(cost, self.maximum) - self.available) / self.restore_rate


def throttle_status(body: Mapping[str, Any]) -> tuple[float | None, ThrottleStatus | None]:
    """The requested cost and the bucket's state from a GraphQL answer's extensions."""
    cost = body.get("extensions", {}).get("cost") if isinstance(body, Mapping) else None
    if not isinstance(cost, Mapping):
        return None, None
    requested = cost.get("requestedQueryCost")
    status = cost.get("throttleStatus")
    bucket = None
    if isinstance(status, Mapping):
        try:
            bucket = ThrottleStatus(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            bucket = None
    return (float(requested) if isinstance(requested, int | float) else None), bucket


def error_message(response: httpx.Response) -> str:
    """Shopify's explanation: `{"errors": "..."}`, `{"errors": {"field": [...]}}` or a list
    of GraphQL errors."""
    try:
        body = response.json()
    except ValueError:
        return body_text(response)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return "; ".join(
            str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors
        )
    if isinstance(errors, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in errors.items())
    return body_text(response)


def graphql_codes(body: object) -> list[str]:
    if not isinstance(body, Mapping) or not isinstance(body.get("errors"), list):
        return []
    codes = []
    for error in body["errors"]:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        if isinstance(extensions, Mapping) and isinstance(extensions.get("code"), str):
            codes.append(extensions["code"])
    return codes


def verdict(response: httpx.Response) -> Verdict:
    """What a Shopify answer means, beyond its HTTP status."""
    if response.status_code == 402:
        return Fail(
            ProviderError(ErrorKind.AUTH, "the shop is frozen (402 Payment Required)", code="402")
        )
    if response.status_code == 423:
        return Fail(ProviderError(ErrorKind.AUTH, "the shop is locked (423 Locked)", code="423"))
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    codes = graphql_codes(body)
    if not codes and not (isinstance(body, Mapping) and body.get("errors")):
        return None
    detail = error_message(response)
    if "THROTTLED" in codes:
        requested, bucket = throttle_status(body)
        wait = bucket.wait_for(requested) if bucket and requested is not None else None
        return Retry(ErrorKind.RATE_LIMITED, detail, after=wait, code="THROTTLED")
    if "ACCESS_DENIED" in codes:
        return Fail(ProviderError(ErrorKind.AUTH, detail, code="ACCESS_DENIED"))
    if "INTERNAL_SERVER_ERROR" in codes:
        return Retry(ErrorKind.TRANSIENT, detail, code="INTERNAL_SERVER_ERROR")
    if isinstance(body, Mapping) and body.get("data"):
        return None  # partial data with field errors: the caller reads what it needs
    code = codes[0] if codes else "GRAPHQL_ERROR"
    return Fail(ProviderError(ErrorKind.INVALID, detail, code=code))


class AdminApi:
    """GraphQL queries to one store's Admin API, paced by its query-cost bucket."""

    def __init__(self, config: ShopifyConfig) -> None:
        token = config.require("access_token", "source")
        self.http = ProviderHttp(
            "shopify",
            config.admin_url,
            headers={
                "X-Shopify-Access-Token": token.get_secret_value(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(
                attempts=config.retries, max_wait=config.max_retry_wait.total_seconds()
            ),
            classify=verdict,
            describe=error_message,
        )
        self._bucket: ThrottleStatus | None = None
        self._bucket_at = 0.0

    async def query(self, query: str, variables: Mapping[str, Any], cost: float) -> Any:
        """Run `query` (whose requested cost is about `cost`) and return its `data`."""
        if self._bucket is not None:
            wait = self._bucket.after(time.monotonic() - self._bucket_at).wait_for(cost)
            if wait > 0:
                log.info("shopify: waiting %.2fs for the query-cost bucket to refill", wait)
                await connector_http.sleep(wait)
        body = await self.http.post_json(
            "/graphql.json", {"query": query, "variables": dict(variables)}
        )
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
            raise ProviderError(ErrorKind.TRANSIENT, "shopify answered without data")
        _, bucket = throttle_status(body)
        if bucket is not None:
            self._bucket, self._bucket_at = bucket, time.monotonic()
        return body["data"]

    async def aclose(self) -> None:
        await self.http.aclose()
