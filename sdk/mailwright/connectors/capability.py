"""The four capabilities a connector can have, and the rate a provider declares."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Capability(StrEnum):
    """What a connector can do; a connector has one or more."""

    SOURCE = "source"
    """Pulls contacts, customers and orders incrementally from a cursor (`Source`)."""
    WEBHOOK = "webhook"
    """Verifies a provider's signed requests and turns them into events (`Webhook`)."""
    AUDIENCE_SYNC = "audience_sync"
    """Pushes segment membership and traits out (`AudienceSync`)."""
    EMAIL_PROVIDER = "email_provider"
    """Sends rendered messages and maps the provider's errors (`EmailProvider`)."""

    @property
    def label(self) -> str:
        """The capability as people write it: `audience sync`, `email provider`."""
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class RateLimit:
    """A provider's documented rate: `per_second` sustained, `burst` at once.

    `concurrency` is the most requests (or connections) the provider allows at the same
    time, when it documents one (Mailchimp: 10). The host enforces the rate with a token
    bucket shared by every replica; the connector only declares it.
    """

    per_second: float
    burst: int = 1
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"per_second must be positive, got {self.per_second!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency!r}")
