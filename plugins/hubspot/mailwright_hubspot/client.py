"""HTTP to HubSpot: its error bodies, its rate-limit policies, its pacing.

HubSpot answers errors with `{"status": "error", "message": …, "category": …}` and a
throttle with 429 and `{"errorType": "RATE_LIMIT", "policyName": …}`:

- `TEN_SECONDLY_ROLLING` (and `SECONDLY`): the burst limit; wait (`Retry-After` when
  given, else backoff with full jitter) and retry;
- `DAILY`: the account's requests for the day are spent; it resets at midnight in the
  account's time zone. Retrying cannot help, so the request fails at once with
  `ProviderError(RATE_LIMITED, code="DAILY")`: a sync stops with that message and keeps
  its cursor, instead of spinning until midnight.

Requests are spaced by a token bucket at the account's burst rate (`Pacer`), and search
requests by a second one at the search endpoint's own limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors.http import (
    Backoff,
    Fail,
    Pacer,
    ProviderHttp,
    Retry,
    Verdict,
    body_text,
    retry_after,
)
from mailwright_hubspot.config import HubSpotConfig

DAILY_POLICIES = frozenset({"DAILY"})


def error_body(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def error_message(response: httpx.Response) -> str:
    """`message (category)` from HubSpot's error body, or the start of the body."""
    body = error_body(response)
    message = body.get("message")
    if not isinstance(message, str):
        return body_text(response)
    category = body.get("category") or body.get("errorType")
    return f"{message} ({category})" if isinstance(category, str) else message


def verdict(response: httpx.Response) -> Verdict:
    if response.status_code != 429:
        return None
    body = error_body(response)
    policy = str(body.get("policyName") or "")
    detail = error_message(response)
    if policy.upper() in DAILY_POLICIES:
        return Fail(
            ProviderError(
                ErrorKind.RATE_LIMITED,
                "HubSpot's daily API limit is reached; it resets at midnight in the "
                f"account's time zone ({detail})",
                code="DAILY",
            )
        )
    return Retry(ErrorKind.RATE_LIMITED, detail, after=retry_after(response), code=policy or "429")


class HubSpotHttp:
    """One account's HTTP client with its two pacers (all requests; search)."""

    def __init__(self, config: HubSpotConfig, needed_by: str) -> None:
        burst = config.requests_per_ten_seconds
        self.http = ProviderHttp(
            "hubspot",
            config.base_url,
            headers={
                "Authorization": f"Bearer {config.token(needed_by)}",
                "Accept": "application/json",
            },
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(
                attempts=config.retries, max_wait=config.max_retry_wait.total_seconds()
            ),
            classify=verdict,
            describe=error_message,
            pacer=Pacer(burst / 10, burst=max(1, burst // 10)),
        )
        self.search_pacer = Pacer(config.search_per_second, burst=1)

    async def aclose(self) -> None:
        await self.http.aclose()
