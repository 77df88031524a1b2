"""The webhook capability: a provider's signed request in, verified events out.

Ingest receives `POST /webhooks/{connector}/{workspace}`, builds a `WebhookRequest` from
the raw request (the body exactly as received: signatures are computed over bytes), and
asks the connector's `Webhook` to `verify` it, then — once the delivery id has passed
ingest's dedup — to `parse` it into events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from mailwright.common.v1.event_pb2 import Event


class Headers(Mapping[str, str]):
    """Immutable HTTP headers, looked up without regard to case.

    A header sent several times reads as its values joined by `", "` (as HTTP allows);
    `get_all` gives them apart, which matters for signature headers: a connector should
    refuse a request that carries two.
    """

    __slots__ = ("_pairs", "_values")

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header names and values must be strings")
            values.setdefault(name.lower(), []).append(value)
        self._pairs = pairs
        self._values = {name: tuple(found) for name, found in values.items()}

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._values[name.lower()])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value sent for `name`, in order; empty when absent."""
        return self._values.get(name.lower(), ())

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The headers as received: names in their original case, in order."""
        return self._pairs

    def __repr__(self) -> str:
        # Values stay out: they carry signatures and tokens.
        return f"Headers({sorted(self._values)!r})"


def as_headers(headers: object) -> Headers:
    """`headers` as `Headers`, from a `Headers`, a mapping or a sequence of pairs."""
    if isinstance(headers, Headers):
        return headers
    if isinstance(headers, Mapping | list | tuple):
        return Headers(headers)
    raise TypeError("headers must be a Headers, a mapping or a sequence of pairs")


def _require_bytes(body: object) -> None:
    # Signatures are computed over the exact bytes; a decoded str would verify wrongly.
    if not isinstance(body, bytes):
        raise TypeError("body must be the raw bytes of the request")


@dataclass(frozen=True, repr=False)
class WebhookRequest:
    """A webhook request exactly as it arrived.

    `url` is the full URL the provider called (scheme, host, path and query), which some
    signatures cover; `body` is the raw bytes; `received_at` is when ingest read it (UTC),
    the clock a connector checks signed timestamps against.
    """

    method: str
    url: str
    headers: Headers
    body: bytes
    received_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", as_headers(self.headers))
        if self.received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware (UTC)")
        _require_bytes(self.body)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def __repr__(self) -> str:
        # No query string (it may carry a secret), no headers, no body (personal data).
        return (
            f"WebhookRequest(method={self.method!r}, path={self.path!r}, "
            f"body={len(self.body)} bytes, received_at={self.received_at.isoformat()!r})"
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """What `verify` learnt: the provider's id of this delivery, and its topic.

    `delivery_id` is what ingest deduplicates on (Shopify's `X-Shopify-Event-Id`, a hash of
    the body when the provider gives no id); `topic` is the provider's event type
    (`orders/create`, `contact.propertyChange`), for routing and logs.
    """

    delivery_id: str
    topic: str = ""

    def __post_init__(self) -> None:
        if not self.delivery_id:
            raise ValueError("delivery_id must not be empty")


@runtime_checkable
class Webhook(Protocol):
    """Verifies and parses one provider's webhook requests, bound to its configuration."""

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        """Check the request is the provider's and fresh; say which delivery it is.

        Raise `WebhookRejected` with `FORGED` (missing or wrong signature; compare in
        constant time), `STALE` (signed timestamp outside the provider's window, measured
        against `request.received_at`) or `MALFORMED` (headers or body that cannot be
        read). Asynchronous because some providers sign with keys that must be fetched.
        """
        ...

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        """Turn a verified request into events (possibly none, for topics ignored).

        Called only after `verify` succeeded and ingest found the delivery id new. Set
        `source` to the connector name and a stable `message_id` (derived from the
        provider's ids, so a redelivery dedups); ingest sets `workspace`. Raise
        `WebhookRejected(MALFORMED, …)` for a payload that cannot be understood.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
