"""The email provider capability: a rendered message out, a provider message id back.

Delivery renders each send, asks the `mailwright_before_send` hook whether it may go,
takes a token from the provider's declared `rate_limit`, and calls `send` (or
`send_batch`). A `ProviderError`'s kind decides what follows: suppress, retry later, park.
Feedback (delivered, bounced, complained …) arrives through the same connector's webhook
capability, whose events ingest publishes on `events.email`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mailwright.connectors.capability import RateLimit
from mailwright.connectors.errors import ProviderError
from mailwright.connectors.webhook import Headers, as_headers


@dataclass(frozen=True, repr=False)
class OutboundMessage:
    """One rendered message to one recipient.

    `from_address` and `to_address` may carry display names (`Shop <news@shop.example>`).
    `headers` are the extra headers render added (`List-Unsubscribe`, …). When `mime` is
    set it is the complete message as render built it, and providers that take raw MIME
    send it as is; the other fields still describe it for providers that take fields.
    `send_id` is delivery's id of the send; `idempotency_key` is stable across retries of
    the same send, for providers that deduplicate; `tags` are provider-side categories.
    """

    send_id: str
    idempotency_key: str
    from_address: str
    to_address: str
    subject: str
    html: str | None = None
    text: str | None = None
    headers: Headers = field(default_factory=Headers)
    mime: bytes | None = None
    tags: tuple[str, ...] = ()
    workspace: str = ""

    def __post_init__(self) -> None:
        for name in ("send_id", "idempotency_key", "from_address", "to_address"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        if self.html is None and self.text is None and self.mime is None:
            raise ValueError("html, text or mime: a message needs a body")
        object.__setattr__(self, "headers", as_headers(self.headers))
        object.__setattr__(self, "tags", tuple(self.tags))

    def __repr__(self) -> str:
        # Addresses, subject and bodies are personal data: ids and sizes only.
        size = len(self.mime) if self.mime is not None else len(self.html or "")
        return f"OutboundMessage(send_id={self.send_id!r}, size={size}, tags={self.tags!r})"


@dataclass(frozen=True)
class SendOutcome:
    """The result of one send: a provider message id, or the error that stopped it."""

    send_id: str
    provider_message_id: str | None = None
    error: ProviderError | None = None

    def __post_init__(self) -> None:
        if (self.provider_message_id is None) == (self.error is None):
            raise ValueError("exactly one of provider_message_id and error must be set")

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class EmailProvider(Protocol):
    """Sends messages through one provider, bound to its configuration."""

    @property
    def rate_limit(self) -> RateLimit:
        """The provider's sending rate; delivery enforces it across replicas."""
        ...

    @property
    def max_batch_size(self) -> int:
        """The most messages one `send_batch` call should carry (1: no batching)."""
        ...

    async def send(self, message: OutboundMessage) -> str:
        """Send `message`; return the provider's message id once the provider accepted it.

        Raise `ProviderError` with the kind that fits the provider's answer: `HARD_BOUNCE`,
        `SOFT_BOUNCE`, `REJECTED`, `RATE_LIMITED` (with `retry_after` when the provider
        says), `AUTH`, `TRANSIENT` or `INVALID`. Never log the addresses or the body.
        """
        ...

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> Sequence[SendOutcome]:
        """Send several messages; one outcome per message, in order.

        Uses the provider's batch API where it has one. A failure of one message is its
        outcome's `error`; a failure of the whole call (`AUTH`, say) is raised.
        """
        ...

    async def aclose(self) -> None:
        """Close connections and other resources."""
        ...
