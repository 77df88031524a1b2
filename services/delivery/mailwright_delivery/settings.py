"""The delivery service's section of the settings (`MAILWRIGHT_SERVICES__DELIVERY__*`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from mailwright.runtime.settings import Duration


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: bool = True
    """Run the send worker, the campaign scheduler and the journey timers here."""
    worker_concurrency: int = Field(default=2, ge=1, le=32)
    """Batches in flight at once per process (one renders while another sends)."""
    batch_size: int = Field(default=100, ge=1, le=1000)
    poll_interval: Duration = timedelta(milliseconds=200)
    send_lease: Duration = timedelta(seconds=60)
    """A claimed send whose worker died is claimed again after this long."""
    timer_lease: Duration = timedelta(seconds=60)
    max_attempts: int = Field(default=6, ge=1, le=50)
    backoff_base: Duration = timedelta(seconds=5)
    backoff_cap: Duration = timedelta(minutes=30)
    address_wait: Duration = timedelta(minutes=10)
    """How long a journey's send waits for its person's email address (a sign-up applied
    after the event that started the journey) before it is skipped."""
    require_consent: bool = False
    """Marketing only to people who explicitly subscribed (else: unless they opted out)."""
    order_event: str = "Order Completed"
    attribution_window: Duration = timedelta(days=7)
    transactional_wait: Duration = timedelta(seconds=20)
    """How long SendTransactional waits for the provider before answering QUEUED."""
    consumer_block: Duration = timedelta(seconds=1)
    """Longest wait of one bus read (and so of a graceful stop of the consumer)."""
    consumer_retry_backoff: Duration = timedelta(seconds=1)
    """First wait before a failed bus message (a busy enrolment) is handled again."""
    audience_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Most members in one audience change (the connector's own limit may be lower)."""
    audience_concurrency: int = Field(default=4, ge=1, le=32)
    """Audience changes (of different destination and segment pairs) synced at once."""
    audience_lease: Duration = timedelta(minutes=10)
    """A change whose worker died is sent again after this long."""
    audience_parked_retry: Duration = timedelta(minutes=30)
    """Wait before a change refused for a reason that retrying will not fix (credentials,
    configuration) is tried again; an operator's resync tries it at once."""
    audience_config_workspaces: dict[str, list[str]] = {}
    """Connector configuration sections reserved for some workspaces: a section listed
    here (`mailchimp-acme: [acme]`) may only be used by destinations of those workspaces."""
