"""Delivery's domain values: campaigns, schedules, experiments, sends, policy.

Plain frozen dataclasses, translated from and to protobuf in `convert.py`; the domain
modules (`lifecycle`, `schedule`, `policy`, `experiments`, `journeys`, `reports`) work on
these and nothing else. Times are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Category(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class SendState(StrEnum):
    QUEUED = "queued"
    # Claimed by a worker and possibly in the provider's hands; never visible as such in
    # the API (reported as queued).
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    SKIPPED = "skipped"
    PARKED = "parked"
    CANCELLED = "cancelled"


TERMINAL_SEND_STATES = frozenset(
    {
        SendState.SENT,
        SendState.DELIVERED,
        SendState.DEFERRED,
        SendState.BOUNCED,
        SendState.SKIPPED,
        SendState.PARKED,
        SendState.CANCELLED,
    }
)


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    ERASED = "erased"


class ExperimentKind(StrEnum):
    NONE = "none"
    SPLIT = "split"
    WINNER = "winner"
    BANDIT = "bandit"


class Metric(StrEnum):
    OPENS = "opens"
    CLICKS = "clicks"
    CONVERSIONS = "conversions"
    REVENUE = "revenue"


# Send priorities: when caps are contested the higher goes first; transactional is exempt.
PRIORITY_TRANSACTIONAL = 100
PRIORITY_JOURNEY = 50
PRIORITY_CAMPAIGN = 10


def normalise_email(address: str) -> str:
    return address.strip().lower()


def email_hash(address: str) -> str:
    """SHA-256 hex of the normalised address: what suppressions and sends keep."""
    return hashlib.sha256(normalise_email(address).encode()).hexdigest()


@dataclass(frozen=True)
class Sender:
    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    provider: str = ""


@dataclass(frozen=True)
class Audience:
    include_segments: tuple[str, ...] = ()
    exclude_segments: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendNow:
    pass


@dataclass(frozen=True)
class SendAt:
    time: datetime


@dataclass(frozen=True)
class SendAtLocalTime:
    date: str  # ISO date
    hour: int
    minute: int
    fallback_timezone: str = "UTC"


@dataclass(frozen=True)
class SendAtBestTime:
    start: datetime
    window: timedelta


Schedule = SendNow | SendAt | SendAtLocalTime | SendAtBestTime


@dataclass(frozen=True)
class Variant:
    key: str
    subject_variant: str = ""
    preheader_variant: str = ""
    template_version: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class Experiment:
    kind: ExperimentKind = ExperimentKind.NONE
    variants: tuple[Variant, ...] = ()
    test_fraction: float = 0.2
    window: timedelta = timedelta(hours=4)
    metric: Metric = Metric.OPENS
    holdout_fraction: float = 0.0
    alpha: float = 0.05


@dataclass(frozen=True)
class FrequencyCap:
    max_sends: int
    window: timedelta


@dataclass(frozen=True)
class QuietHours:
    start_hour: int
    end_hour: int

    @property
    def enabled(self) -> bool:
        return self.start_hour != self.end_hour


@dataclass(frozen=True)
class DeliveryPolicy:
    frequency_caps: tuple[FrequencyCap, ...] = ()
    quiet_hours: QuietHours = field(default_factory=lambda: QuietHours(0, 0))
    soft_bounce_limit: int = 3
    default_sender: Sender = field(default_factory=lambda: Sender(provider="smtp"))
    provider_rate_per_second: float = 0.0
    timezone: str = "UTC"


@dataclass(frozen=True)
class Recipient:
    """What the pipeline knows about one person at send time."""

    profile_id: str
    email: str
    timezone: str = ""
    locale: str = ""
    consent: str = ""  # "subscribed", "unsubscribed", "pending" or "" (unknown)
    traits: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignSpec:
    """What a campaign says it will do (the stored Campaign message, read)."""

    display_name: str
    audience: Audience
    template: str
    sender: Sender
    schedule: Schedule | None
    throttle_per_hour: int
    category: Category
    experiment: Experiment
    attribution_window: timedelta
