"""The errors that cross the connector contract.

Connectors raise `ProviderError` (for every capability) and `WebhookRejected` (for
webhooks); the host maps them to retries, suppressions, parked sends and HTTP answers.
Their details are redacted of email addresses and truncated, because they end up in logs
and in send records.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from mailwright.registry import DuplicateName, UnknownName

MAX_DETAIL_LENGTH = 500

_ADDRESS = re.compile(r"[^\s<>()\[\]:;,\"']+@[^\s<>()\[\]:;,\"']+")


def redact(detail: str) -> str:
    """`detail` without email addresses, on one line, at most 500 characters.

    Provider replies often echo the recipient (`550 5.1.1 <bob@example.com>: unknown`);
    that must not reach a log line or a send record.
    """
    text = _ADDRESS.sub("<address>", " ".join(detail.split()))
    if len(text) > MAX_DETAIL_LENGTH:
        text = text[: MAX_DETAIL_LENGTH - 1] + "…"
    return text


class ConnectorError(Exception):
    """Base of every error of the connector contract."""


class UnknownConnector(ConnectorError, UnknownName):
    """No connector is registered under the name asked for."""


class DuplicateConnector(ConnectorError, DuplicateName):
    """Two connectors were registered under one name."""


class CapabilityMissing(ConnectorError, LookupError):
    """The connector exists but does not have the capability asked for."""


class ErrorKind(StrEnum):
    """What went wrong at a provider, in the few kinds the host acts on differently."""

    HARD_BOUNCE = "hard_bounce"
    """The address does not exist or will never accept mail: suppress it."""
    SOFT_BOUNCE = "soft_bounce"
    """The mailbox refused for now (full, unavailable): retry later, suppress after N."""
    REJECTED = "rejected"
    """The provider or receiver refused this message (policy, content, spam, sender)."""
    RATE_LIMITED = "rate_limited"
    """Too fast: wait `retry_after` (or back off) and retry."""
    AUTH = "auth"
    """Credentials or connection security refused: an operator must act; retrying won't help."""
    TRANSIENT = "transient"
    """A network failure or a provider-side error: retry with backoff."""
    INVALID = "invalid"
    """The request itself is wrong (bad address syntax, too large, bad field): fix, don't retry."""

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later without anyone changing anything."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({ErrorKind.SOFT_BOUNCE, ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT})


SUPPRESS_REASONS = ("hard_bounce", "complaint", "unsubscribed")


class ProviderError(ConnectorError):
    """A provider refused or failed a request; `kind` says what the host should do.

    `retry_after` is the wait the provider asked for (Retry-After, a 421 reply), when it
    gave one. `code` is the provider's own code (`"550 5.1.1"`, `"429"`,
    `"REQUEST_LIMIT_EXCEEDED"`), kept for reports. `detail` is redacted of addresses.
    `suppress` says the address must not be mailed again, and why: `"hard_bounce"`,
    `"complaint"` or `"unsubscribed"` (a provider that rejects because the person marked
    mail as spam or unsubscribed with it); the host adds it to its suppression list.
    """

    def __init__(
        self,
        kind: ErrorKind,
        detail: str,
        *,
        retry_after: timedelta | None = None,
        code: str | None = None,
        suppress: str | None = None,
    ) -> None:
        if suppress is not None and suppress not in SUPPRESS_REASONS:
            raise ValueError(f"suppress: must be one of {', '.join(SUPPRESS_REASONS)}")
        self.kind = ErrorKind(kind)
        self.detail = redact(detail)
        self.retry_after = retry_after
        self.code = code
        self.suppress = suppress
        super().__init__(f"{self.kind.value}: {self.detail}")

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def __repr__(self) -> str:
        extra = f", retry_after={self.retry_after!r}" if self.retry_after is not None else ""
        code = f", code={self.code!r}" if self.code is not None else ""
        return f"ProviderError({self.kind.value!r}, {self.detail!r}{code}{extra})"


class RejectReason(StrEnum):
    """Why a webhook request was refused."""

    FORGED = "forged"
    """The signature is missing or does not match the body and the secret."""
    STALE = "stale"
    """The signed timestamp is outside the provider's tolerance window."""
    REPLAYED = "replayed"
    """This delivery id was already accepted (raised by the host's dedup, or by a
    connector that tracks nonces itself)."""
    MALFORMED = "malformed"
    """The request cannot be parsed: bad encoding, missing fields, unknown topic."""


class WebhookRejected(ConnectorError):
    """A webhook request refused, with a reason the host turns into an HTTP answer."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = RejectReason(reason)
        self.detail = redact(detail)
        super().__init__(f"{self.reason.value}: {self.detail}")
