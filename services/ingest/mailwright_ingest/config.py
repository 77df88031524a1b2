"""The ingest service's settings section (`MAILWRIGHT_SERVICES__INGEST__<FIELD>`).

Limits of what one call may carry, the defaults a new workspace's ingest policy starts
with, cache lifetimes, and the machine-open heuristics of the tracking edge.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from mailwright.runtime.settings import CommaList, Duration


class IngestSettings(BaseModel):
    """Validated once at start; a bad value names `MAILWRIGHT_SERVICES__INGEST__<FIELD>`."""

    # -- what one call may carry ------------------------------------------------------
    max_batch_events: int = Field(default=1000, ge=1, le=10_000)
    """Events in one `IngestBatch`."""
    max_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Serialised size of one `IngestBatch` request."""
    max_event_bytes: int = Field(default=32 * 1024, ge=1024)
    """Serialised size of one event (Segment's 32 KB per call)."""
    max_property_depth: int = Field(default=6, ge=1, le=32)
    """Nesting of objects and lists in properties, traits and context."""
    max_properties: int = Field(default=500, ge=1)
    """Keys and list items in one event's properties, traits and context, together."""
    max_string_chars: int = Field(default=8192, ge=16)
    """Characters in one string value."""
    http_max_call_bytes: int = Field(default=32 * 1024, ge=1024)
    """Body of one `/v1/track` (… `/v1/alias`) call."""
    http_max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    """Body of one `/v1/batch` call (Segment's 500 KB)."""
    webhook_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Body of one webhook request."""

    # -- what a new workspace's ingest policy starts with ------------------------------
    unplanned_events: str = Field(default="accept", pattern="^(accept|reject)$")
    dedup_window: Duration = timedelta(hours=24)
    rate_limit_per_second: float = Field(default=1000.0, ge=0)
    """Events per second per write key (and per API token); 0 means unlimited."""
    rate_limit_burst: int = Field(default=5000, ge=1)
    max_past: Duration = timedelta(days=30)
    max_future: Duration = timedelta(hours=24)
    allowed_origins: CommaList = ["*"]
    seed_default_taxonomy: bool = True
    """A new workspace starts with the shipped e-commerce and email taxonomy."""

    # -- caches -----------------------------------------------------------------------
    policy_cache_ttl: Duration = timedelta(seconds=5)
    """How long a replica keeps a workspace's policy and taxonomy before reading them
    again: a change made through another replica takes effect within this time."""
    write_key_cache_ttl: Duration = timedelta(seconds=30)
    """How long a write key lookup is kept: a revocation takes effect within this time."""

    # -- the tracking edge ------------------------------------------------------------
    machine_ip_ranges: CommaList = []
    """CIDR ranges whose opens and clicks are machines (beside Apple's 17.0.0.0/8)."""
    scanner_user_agents: CommaList = []
    """Extra regular expressions of link-scanner user agents."""
    click_burst_links: int = Field(default=3, ge=2)
    """This many different links of one send clicked within `click_burst_window` are a
    scanner following every link."""
    click_burst_window: Duration = timedelta(seconds=5)
    first_touch_window: Duration = timedelta(seconds=2)
    """A click this soon after the first open or click of its send is a machine."""
