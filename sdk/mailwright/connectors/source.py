"""The source capability: pull records from a provider, incrementally, as events.

A source exposes one or more streams (`customers`, `orders`, `contacts`, `leads`). The host
(`mailwright connectors sync NAME`, or a scheduled job) pulls a stream from the cursor it
stored last time, publishes each batch's events, and stores the batch's cursor only after
the events are accepted: a sync that stops anywhere resumes where it stopped, and at worst
repeats one batch (which ingest deduplicates by `message_id`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mailwright.common.v1.event_pb2 import Event


@dataclass(frozen=True)
class SourceBatch:
    """One page of a stream, turned into events, with where to resume after it.

    `cursor` is opaque to the host; resuming with it must yield what comes after this
    batch. The last batch of a pull carries the cursor for the next incremental run (a
    high-water mark such as an `updated_at`), possibly with no events. `total` is the
    provider's estimate of the stream's size when it reports one (for progress bars).
    `skipped` describes records of this batch the source could not turn into events (a bad
    row of a file: `customers.csv line 12: column 'ltv': not a decimal`), without their
    values; the host reports them and the sync exits non-zero, the rest being imported.
    """

    stream: str
    events: tuple[Event, ...]
    cursor: str | None
    total: int | None = None
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "skipped", tuple(self.skipped))


@runtime_checkable
class Source(Protocol):
    """Pulls a provider's records incrementally, bound to its configuration."""

    @property
    def streams(self) -> Sequence[str]:
        """The streams this source can pull, e.g. `("customers", "orders")`."""
        ...

    def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        """Yield the stream's batches from `cursor` (None: from the beginning) to its end.

        Respect the provider's rate limits (wait on 429 and Retry-After, back off with
        jitter on 5xx) inside the iterator; raise `ProviderError` when a request fails for
        good (`AUTH`, `INVALID`) or keeps failing (`TRANSIENT`, `RATE_LIMITED`). Events
        carry a stable `message_id` derived from the provider's record id and version, so
        a repeated batch deduplicates, and `source` set to the connector name. An unknown
        stream raises `ValueError` naming the known ones.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
