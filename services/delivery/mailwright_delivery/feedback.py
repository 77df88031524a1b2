"""What delivery consumes from the bus, and the relay of what it publishes.

- `events.email`: opens, clicks (with `send_id`, from the tracking edge), deliveries,
  deferrals, bounces, complaints (provider webhooks), unsubscribes. Each updates its send
  once; hard bounces, complaints and unsubscribes suppress the address at once, soft
  bounces after the policy's count. Events delivery published itself are skipped.
- `profiles.changed`: the applied events of a person drive journeys (triggers, goals,
  awaited events) and orders are attributed to the sends that led to them.
- `profiles.deleted`: the person is erased; a hashed suppression remains.
- `segments.membership`: segment triggers of journeys, and the transitions audience
  destinations sync (recorded here, synced by the audience runner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from google.protobuf import json_format

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Bus, Message, Outgoing
from mailwright.runtime.db import Database
from mailwright.segment.v1 import segment_pb2
from mailwright_delivery import policy
from mailwright_delivery.audience_runner import AudienceRunner
from mailwright_delivery.events import SOURCE, TOPIC
from mailwright_delivery.journey_runner import ORDER_WINDOW, JourneyRunner, event_time
from mailwright_delivery.model import SuppressionReason, email_hash
from mailwright_delivery.providers import Policies
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore, Feedback

log = logging.getLogger(__name__)

TOPICS = ("events.email", "profiles.changed", "profiles.deleted", "segments.membership")

KINDS = {
    "Email Delivered": Feedback.DELIVERED,
    "Email Deferred": Feedback.DEFERRED,
    "Email Opened": Feedback.OPENED,
    "Email Link Clicked": Feedback.CLICKED,
    "Email Clicked": Feedback.CLICKED,
    "Email Bounced": Feedback.BOUNCED,
    "Email Marked as Spam": Feedback.COMPLAINED,
    "Email Complained": Feedback.COMPLAINED,
    "Unsubscribed": Feedback.UNSUBSCRIBED,
    "Email Unsubscribed": Feedback.UNSUBSCRIBED,
}


class Consumer:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        journeys: JourneyRunner,
        policies: Policies,
        settings: DeliverySettings,
        clock: Callable[[], datetime] = policy.utcnow,
        notify_sends: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.store = store
        self.journeys = journeys
        self.policies = policies
        self.settings = settings
        self.clock = clock
        self.notify_sends = notify_sends
        self.audiences: AudienceRunner | None = None

    async def handle(self, message: Message) -> None:
        if message.topic == "events.email":
            await self.on_email_event(event_pb2.Event.FromString(message.value))
        elif message.topic == "profiles.changed":
            await self.on_profile_changed(profile_pb2.ProfileChanged.FromString(message.value))
        elif message.topic == "profiles.deleted":
            await self.on_profile_deleted(profile_pb2.ProfileDeleted.FromString(message.value))
        elif message.topic == "segments.membership":
            change = segment_pb2.MembershipChange.FromString(message.value)
            if self.audiences is not None:
                await self.audiences.on_membership(change)
            await self.journeys.on_membership(change)

    async def on_email_event(self, event: event_pb2.Event) -> None:
        if event.source == SOURCE:
            return  # ours: its facts were recorded with the send
        kind = KINDS.get(event.event)
        if kind is None:
            return
        workspace = event.workspace
        props = json_format.MessageToDict(event.properties)
        send_id = str(props.get("send_id") or "")
        machine = bool(props.get("machine"))
        now = self.clock()
        at = event_time(event)
        if not send_id:
            # Provider webhooks may only quote the message id we got from the provider.
            quoted = str(props.get("provider_message_id") or props.get("message_id") or "")
            found: str | None = await self.db.run(
                self.store.send_by_provider_message_id, workspace, quoted
            )
            send_id = found or ""
        if not send_id:
            if kind is Feedback.UNSUBSCRIBED:
                await self._unsubscribe_address(event, now)
            return
        rules = await self.policies.get(workspace)
        bounce_type = str(props.get("bounce_type") or "hard")
        result = await self.db.run(
            self.store.apply_feedback,
            workspace,
            f"{send_id}:{kind.value}:{'machine' if machine else 'human'}:{bounce_type}",
            send_id,
            kind,
            at,
            now,
            machine=machine,
            hard=bounce_type != "soft",
            soft_bounce_limit=rules.soft_bounce_limit,
            reason=str(props.get("reason") or ""),
        )
        if result.suppressed is not None:
            log.info("send %s: address suppressed (%s)", send_id, result.suppressed.value)

    async def _unsubscribe_address(self, event: event_pb2.Event, now: datetime) -> None:
        for identity in event.identities:
            if identity.type == "email" and identity.value:
                await self.db.run(
                    self.store.add_suppression,
                    event.workspace,
                    email_hash(identity.value),
                    SuppressionReason.UNSUBSCRIBED,
                    event.source or "unsubscribe",
                    "",
                    now,
                )

    async def on_profile_changed(self, change: profile_pb2.ProfileChanged) -> None:
        if change.merged_profile_ids:
            await self.db.run(
                self.store.merge_profiles,
                change.workspace,
                change.profile_id,
                list(change.merged_profile_ids),
                self.clock(),
            )
        if _may_bring_address(change):
            await self._address_arrived(change)
        for event in change.events:
            if event.type != event_pb2.EVENT_TYPE_TRACK or event.source == SOURCE:
                continue
            if event.event == self.settings.order_event:
                await self._order(change.workspace, change.profile_id, event)
            await self.journeys.on_event(change.workspace, change.profile_id, event)

    async def _address_arrived(self, change: profile_pb2.ProfileChanged) -> None:
        """Journey sends waiting for this person's address look again now, rather than
        at their next scheduled look (see `policy.address_recheck`)."""
        woken = await self.db.run(
            self.store.wake_waiting,
            change.workspace,
            [change.profile_id, *change.merged_profile_ids],
            policy.WAITING_FOR_ADDRESS,
            self.clock(),
        )
        if woken:
            log.info(
                "profile %s: %d sends waiting for an address look again", change.profile_id, woken
            )
            self.notify_sends()

    async def _order(self, workspace: str, profile_id: str, event: event_pb2.Event) -> None:
        props = json_format.MessageToDict(event.properties)
        raw = props.get("revenue", props.get("total", 0))
        if isinstance(raw, dict):  # money as {"amount": "...", "currency_code": "..."}
            currency = str(raw.get("currency_code") or props.get("currency") or "")
            raw = raw.get("amount", 0)
        else:
            currency = str(props.get("currency") or "")
        try:
            revenue = Decimal(str(raw))
        except InvalidOperation:
            revenue = Decimal(0)
        if not revenue.is_finite():
            revenue = Decimal(0)
        now = self.clock()
        credited = await self.db.run(
            self.store.record_order,
            workspace,
            f"order:{event.message_id}",
            profile_id,
            event_time(event),
            revenue,
            currency.upper()[:3],
            now,
            max(ORDER_WINDOW, self.settings.attribution_window),
        )
        if credited:
            log.info("order %s credited to send %s", event.message_id, credited)

    async def on_profile_deleted(self, deleted: profile_pb2.ProfileDeleted) -> None:
        ids = [deleted.profile_id, *deleted.merged_profile_ids]
        erased = await self.db.run(
            self.store.erase_profiles,
            deleted.workspace,
            ids,
            list(deleted.email_hashes),
            self.clock(),
        )
        log.info("profile %s erased from %d sends", deleted.profile_id, erased)


class Relay:
    """Publishes the outbox of bus messages, oldest first, then deletes what went out.

    A crash between the publish and the delete publishes those messages again: consumers
    recognise them by their message id (`<send id>:sent`).
    """

    def __init__(self, db: Database, store: DeliveryStore, bus: Bus, batch_size: int = 500) -> None:
        self.db = db
        self.store = store
        self.bus = bus
        self.batch_size = batch_size

    async def tick(self) -> int:
        """Publish one batch; how many messages went out."""
        batch = await self.db.run(self.store.outbox_batch, self.batch_size)
        if not batch:
            return 0
        # Each message keeps the trace it was written in (the bus keeps a traceparent
        # the message brings), rather than all joining this relay's.
        await self.bus.publish_many(
            [
                Outgoing(
                    m.topic,
                    m.key,
                    m.payload,
                    {"traceparent": m.trace_parent} if m.trace_parent else None,
                )
                for _, m in batch
            ]
        )
        await self.db.run(self.store.outbox_delete, [row_id for row_id, _ in batch])
        return len(batch)

    async def step(self) -> bool:
        """One batch; True when a full one went out, so more may be waiting. A partial
        batch emptied the outbox: what is written after it wakes the relay again (the
        writer's notification), so looking once more at once would find nothing."""
        return await self.tick() >= self.batch_size


async def loop(
    name: str,
    tick: Callable[[], object],
    interval: float,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
) -> None:
    """Call `tick` until `stop`; when it had nothing to do, wait `interval` or until
    `wake` is set (new work was just written), whichever comes first."""
    while not stop.is_set():
        try:
            result = tick()
            if asyncio.iscoroutine(result):
                result = await result
            busy = bool(result)
        except Exception:
            log.exception("%s failed; trying again", name)
            busy = False
        if not busy:
            await _pause(stop, wake, interval)


async def _pause(stop: asyncio.Event, wake: asyncio.Event | None, interval: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    _, pending = await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
    if wake is not None:
        wake.clear()


def _may_bring_address(change: profile_pb2.ProfileChanged) -> bool:
    """Whether the change may give the person an email address: an `email` trait that
    changed, an email identity linked, or profiles merged in (with theirs)."""
    return (
        "email" in change.traits.fields
        or "email" in change.computed_traits.fields
        or any(identity.type == "email" for identity in change.identities)
        or bool(change.merged_profile_ids)
    )


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


__all__ = ["TOPIC", "TOPICS", "Consumer", "Relay", "loop"]
