"""A workspace's ingest policy: unplanned events, dedup window, rate, time window, CORS.

Plain data and checks: `Policy` is what the store keeps and the intake reads;
`check_policy` names every field an update gets wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from mailwright.errors import FieldViolation
from mailwright_ingest.config import IngestSettings


class Unplanned(StrEnum):
    """What happens to an event whose name is not in the taxonomy."""

    ACCEPT = "accept"
    """Accept it, marked `unplanned = true`."""
    REJECT = "reject"


MIN_DEDUP_WINDOW = timedelta(minutes=1)
MAX_DEDUP_WINDOW = timedelta(days=30)
MAX_PAST = timedelta(days=3650)
MAX_FUTURE = timedelta(days=365)
MAX_ORIGINS = 100
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True)
class Policy:
    unplanned: Unplanned
    dedup_window: timedelta
    rate_per_second: float
    """0 means unlimited."""
    burst: int
    max_past: timedelta
    max_future: timedelta
    allowed_origins: tuple[str, ...]

    @classmethod
    def defaults(cls, settings: IngestSettings) -> Policy:
        return cls(
            unplanned=Unplanned(settings.unplanned_events),
            dedup_window=settings.dedup_window,
            rate_per_second=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
            max_past=settings.max_past,
            max_future=settings.max_future,
            allowed_origins=tuple(settings.allowed_origins),
        )

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser page at `origin` (`https://shop.example`) may send events."""
        for allowed in self.allowed_origins:
            if allowed == "*" or allowed == origin:
                return True
            if "://*." in allowed:
                scheme, _, host = allowed.partition("://*.")
                if origin.startswith(scheme + "://") and origin.endswith("." + host):
                    return True
        return False


def check_policy(policy: Policy, prefix: str = "policy") -> list[FieldViolation]:
    """Every field of `policy` outside what ingest can honour."""
    problems: list[FieldViolation] = []

    def bad(field: str, description: str) -> None:
        problems.append(FieldViolation(f"{prefix}.{field}", description))

    if not MIN_DEDUP_WINDOW <= policy.dedup_window <= MAX_DEDUP_WINDOW:
        bad("dedup_window", "must be between 1 minute and 30 days")
    if not 0 <= policy.rate_per_second <= 1_000_000:
        bad("rate_limit_per_second", "must be between 0 (unlimited) and 1,000,000")
    if policy.rate_per_second > 0 and not 1 <= policy.burst <= 10_000_000:
        bad("rate_limit_burst", "must be between 1 and 10,000,000")
    if not timedelta(hours=1) <= policy.max_past <= MAX_PAST:
        bad("max_past", "must be between 1 hour and 3650 days")
    if not timedelta(minutes=1) <= policy.max_future <= MAX_FUTURE:
        bad("max_future", "must be between 1 minute and 365 days")
    if len(policy.allowed_origins) > MAX_ORIGINS:
        bad("allowed_origins", f"more than {MAX_ORIGINS} origins")
    for index, origin in enumerate(policy.allowed_origins):
        if origin != "*" and not _ORIGIN.match(origin):
            bad(
                f"allowed_origins[{index}]",
                f"{origin[:80]!r} is not '*' or an origin such as https://shop.example"
                " (or https://*.shop.example)",
            )
    return problems
