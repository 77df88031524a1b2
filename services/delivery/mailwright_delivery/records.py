"""What the store hands back: rows as frozen dataclasses, free of SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from mailwright.runtime.bus.telemetry import current_traceparent
from mailwright_delivery.model import CampaignState, Category, SendState


@dataclass(frozen=True)
class CampaignRecord:
    workspace: str
    id: str
    display_name: str
    spec: bytes  # the Campaign message as the API stored it
    state: CampaignState
    category: Category
    template_version: str
    start_at: datetime | None
    end_at: datetime | None
    audience_size: int
    snapshot_done: bool
    winner: str
    created_at: datetime
    updated_at: datetime
    started: bool


@dataclass(frozen=True)
class NewSend:
    """A send to put in the outbox; `idempotency_key` is unique per workspace, forever."""

    id: str
    workspace: str
    idempotency_key: str
    category: Category
    priority: int
    due_at: datetime
    profile_id: str = ""
    campaign_id: str = ""
    journey_id: str = ""
    journey_version: int = 0
    step_id: str = ""
    enrolment_id: str = ""
    email_hash: str = ""
    address: str = ""
    template: str = ""
    variant: str = ""
    subject_variant: str = ""
    preheader_variant: str = ""
    holdout: bool = False
    awaiting_winner: bool = False
    segment: str = ""
    sender: str = ""  # JSON of the Sender
    context: str = ""  # JSON of extra render variables
    state: SendState = SendState.QUEUED
    reason: str = ""
    request_id: str = ""
    attribution_seconds: int = 7 * 86400
    # The trace of what made the send (a journey step, a campaign's snapshot, an API
    # call): the worker that sends it later continues that trace.
    trace_parent: str = field(default_factory=current_traceparent)
    # Written already claimed (`sending`, leased to `lease_owner` until `lease_until`)
    # by a replica that hands it to its send worker right after the commit, with no
    # claim of its own; if that replica dies, the lease runs out as for any claim.
    lease_owner: str = ""
    lease_until: datetime | None = None

    def as_claimed(self, now: datetime) -> SendRecord:
        """The send as its claim reads it back, for a send written already claimed."""
        return SendRecord(
            id=self.id,
            workspace=self.workspace,
            idempotency_key=self.idempotency_key,
            category=self.category,
            priority=self.priority,
            state=SendState.SENDING,
            reason=self.reason,
            due_at=self.due_at,
            created_at=now,
            profile_id=self.profile_id,
            campaign_id=self.campaign_id,
            journey_id=self.journey_id,
            journey_version=self.journey_version,
            step_id=self.step_id,
            enrolment_id=self.enrolment_id,
            email_hash=self.email_hash,
            address=self.address,
            template=self.template,
            variant=self.variant,
            subject_variant=self.subject_variant,
            preheader_variant=self.preheader_variant,
            holdout=self.holdout,
            awaiting_winner=self.awaiting_winner,
            hold=False,
            segment=self.segment,
            sender=self.sender,
            context=self.context,
            provider="",
            provider_message_id="",
            attempts=0,
            trace_parent=self.trace_parent,
        )


@dataclass(frozen=True)
class SendRecord:
    id: str
    workspace: str
    idempotency_key: str
    category: Category
    priority: int
    state: SendState
    reason: str
    due_at: datetime
    created_at: datetime
    profile_id: str
    campaign_id: str
    journey_id: str
    journey_version: int
    step_id: str
    enrolment_id: str
    email_hash: str
    address: str
    template: str
    variant: str
    subject_variant: str
    preheader_variant: str
    holdout: bool
    awaiting_winner: bool
    hold: bool
    segment: str
    sender: str
    context: str
    provider: str
    provider_message_id: str
    attempts: int
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    open_at: datetime | None = None
    click_at: datetime | None = None
    bounced_at: datetime | None = None
    trace_parent: str = ""


@dataclass(frozen=True)
class OutboxMessage:
    """A bus message written in the same transaction as the change it reports."""

    topic: str
    key: str
    payload: bytes
    # The trace the message was made in (the worker's send, a webhook's request): the
    # relay publishes it under that context, so its consumers continue the trace.
    trace_parent: str = field(default_factory=current_traceparent)


@dataclass(frozen=True)
class SuppressionRecord:
    workspace: str
    email_hash: str
    reason: str
    source: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class JourneyRecord:
    workspace: str
    id: str
    display_name: str
    state: str
    version: int
    spec: bytes
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EnrolmentRecord:
    id: str
    workspace: str
    journey_id: str
    version: int
    profile_id: str
    state: str
    step_id: str
    wake_at: datetime | None
    waiting_event: str
    waiting_where: str
    revision: int
    entered_at: datetime


@dataclass(frozen=True)
class Progress:
    """An enrolment's move, committed at once with the sends it creates."""

    step_id: str
    wake_at: datetime | None
    waiting_event: str = ""
    waiting_where: str = ""
    exit_reason: str = ""
    sends: tuple[NewSend, ...] = ()


@dataclass(frozen=True)
class FactRow:
    dimension: str
    audience: int = 0
    sent: int = 0
    delivered: int = 0
    unique_opens: int = 0
    machine_opens: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    revenue_squares: Decimal = Decimal(0)
    currency: str = ""
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0
    skipped: int = 0
    converted_people: int = 0
    extra: dict[str, int] = field(default_factory=dict)
