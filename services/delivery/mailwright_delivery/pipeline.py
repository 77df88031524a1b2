"""The send worker: claim due sends, check them, render them, hand them to the provider.

For each claimed batch, per workspace and in this order:

1. the recipients, fresh from the profile service (email, zone, consent, traits);
2. suppression and consent (`policy.suppression_reason`) → skipped;
3. quiet hours in the recipient's zone → due again when they end (marketing only);
4. frequency caps, counted in the key-value store across campaigns and journeys → skipped
   (marketing only; transactional is exempt);
5. `RenderBatch`, per template version and sender;
6. the `mailwright_before_send` hook → skipped when vetoed;
7. confirmation: the sends still leased to this worker and not held (a pause or cancel
   since the claim drops them), with the attempt counted;
8. the provider's token bucket, then `send_batch`; each outcome is recorded — sent (with
   the provider message id and an `Email Sent` event), bounced and suppressed, retried
   later with backoff and jitter, or parked with its reason — then `mailwright_after_send`.

A crash anywhere leaves the sends leased; after the lease they are claimed again. The one
window that cannot be closed is between the provider's acceptance and step 8's record:
the send is then handed over again, with the same idempotency key and so the same
Message-ID (docs/delivery.md, "Exactly once").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

from google.protobuf import struct_pb2

from mailwright.connectors import (
    EmailProvider,
    ErrorKind,
    OutboundMessage,
    ProviderError,
    SendOutcome,
)
from mailwright.connectors.webhook import Headers
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import MailwrightError, Unavailable
from mailwright.extensions import SendVeto
from mailwright.names import resource_name
from mailwright.plugins import Plugins
from mailwright.render.v1 import render_pb2
from mailwright.runtime.db import Database
from mailwright.runtime.kv import KeyValueStore
from mailwright_delivery import experiments, policy, telemetry
from mailwright_delivery.convert import campaign_spec, sender_from_json
from mailwright_delivery.directory import Directory
from mailwright_delivery.events import email_event
from mailwright_delivery.model import (
    CampaignSpec,
    Category,
    DeliveryPolicy,
    ExperimentKind,
    Recipient,
    Sender,
    SendState,
    SuppressionReason,
    email_hash,
)
from mailwright_delivery.providers import Policies, Providers, RateLimiter, chunk_size
from mailwright_delivery.records import SendRecord
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import Accepted, DeliveryStore

log = logging.getLogger(__name__)

UNAVAILABLE_DELAY = timedelta(seconds=5)
METRIC_COLUMN = {
    "opens": "open_at",
    "clicks": "click_at",
    "conversions": "conversions",
    "revenue": "revenue",
}


@dataclass
class Ready:
    send: SendRecord
    recipient: Recipient
    template: str = ""
    sender: Sender = field(default_factory=Sender)
    subject_variant: str = ""
    preheader_variant: str = ""
    campaign: str = ""
    message: OutboundMessage | None = None


class SendWorker:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        providers: Providers,
        policies: Policies,
        limiter: RateLimiter,
        plugins: Plugins,
        kv: KeyValueStore,
        settings: DeliverySettings,
        owner: str,
        clock: Callable[[], datetime] = policy.utcnow,
        notify_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.providers = providers
        self.policies = policies
        self.limiter = limiter
        self.plugins = plugins
        self.kv = kv
        self.settings = settings
        self.owner = owner
        self.clock = clock
        self.notify_outbox = notify_outbox
        self.backoff = policy.Backoff(
            settings.backoff_base, settings.backoff_cap, settings.max_attempts
        )

    async def tick(self, only: Sequence[str] = ()) -> int:
        """Claim one batch of due sends and see each to an outcome; how many were claimed."""
        now = self.clock()
        claimed = await self.db.run(
            self.store.claim_sends,
            now,
            self.owner,
            now + self.settings.send_lease,
            self.settings.batch_size,
            list(only),
        )
        by_workspace: dict[str, list[SendRecord]] = defaultdict(list)
        for send in claimed:
            by_workspace[send.workspace].append(send)
        for workspace, sends in by_workspace.items():
            try:
                await self._workspace(workspace, sends)
            except Exception:
                log.exception("a batch of %d sends failed; released for a retry", len(sends))
                await self.db.run(
                    self.store.release_sends,
                    [s.id for s in sends],
                    self.owner,
                    self.clock() + UNAVAILABLE_DELAY,
                    self.clock(),
                )
        return len(claimed)

    # -- the steps ------------------------------------------------------------------------

    async def _workspace(self, workspace: str, sends: list[SendRecord]) -> None:
        rules = await self.policies.get(workspace)
        try:
            recipients = await self.directory.recipients(
                workspace, [s.profile_id for s in sends if s.profile_id]
            )
        except Unavailable:
            log.warning("profile service unavailable; %d sends wait", len(sends))
            await self._release(sends, self.clock() + UNAVAILABLE_DELAY)
            return
        ready = await self._checked(workspace, sends, recipients, rules)
        ready = await self._prepared(workspace, ready, rules)
        ready = await self._rendered(workspace, ready)
        ready = await self._allowed(ready)
        by_provider: dict[str, list[Ready]] = defaultdict(list)
        for item in ready:
            by_provider[item.sender.provider].append(item)
        for name, items in by_provider.items():
            await self._hand_over(workspace, name, items, rules)

    async def _checked(
        self,
        workspace: str,
        sends: list[SendRecord],
        recipients: dict[str, Recipient],
        rules: DeliveryPolicy,
    ) -> list[Ready]:
        now = self.clock()
        candidates: list[Ready] = []
        for send in sends:
            if send.profile_id:
                found = recipients.get(send.profile_id)
                if found is None:
                    await self._final(send, SendState.SKIPPED, "profile not found")
                    continue
                candidates.append(Ready(send, found))
            elif send.address:
                candidates.append(Ready(send, Recipient("", send.address)))
            else:
                await self._final(send, SendState.SKIPPED, "no recipient")
        hashes = {id(c): email_hash(c.recipient.email) for c in candidates if c.recipient.email}
        suppressed = await self.db.run(self.store.suppressed, workspace, list(hashes.values()))
        passed: list[Ready] = []
        later: dict[datetime, list[SendRecord]] = defaultdict(list)
        for item in candidates:
            send, person = item.send, item.recipient
            reason = policy.suppression_reason(
                person,
                suppressed.get(hashes.get(id(item), "")),
                send.category,
                require_consent=self.settings.require_consent,
            )
            if reason is not None:
                await self._final(send, SendState.SKIPPED, reason)
                continue
            if policy.capped(send.category):
                until = policy.quiet_until(
                    now, person.timezone or rules.timezone, rules.quiet_hours
                )
                if until is not None:
                    later[until].append(send)
                    continue
                cap = await self._cap(workspace, send, rules)
                if cap is not None:
                    await self._final(send, SendState.SKIPPED, cap)
                    continue
            passed.append(item)
        for until, held in later.items():
            await self._release(held, until)
        return passed

    async def _cap(self, workspace: str, send: SendRecord, rules: DeliveryPolicy) -> str | None:
        """Check and record the person's frequency caps; the reason when one is full."""
        caps = rules.frequency_caps
        if not caps or not send.profile_id:
            return None
        keys = [policy.cap_key(workspace, send.profile_id, cap) for cap in caps]
        counts = [await self.kv.window_count(k, c.window) for k, c in zip(keys, caps, strict=True)]
        full = policy.caps_exceeded(counts, caps)
        if full is None:
            for key, cap in zip(keys, caps, strict=True):
                recorded, _ = await self.kv.window_add_if_below(
                    key, cap.window, cap.max_sends, member=send.id
                )
                if not recorded:
                    full = cap
                    break
        if full is None:
            return None
        return f"frequency cap: {full.max_sends} per {full.window}"

    async def _prepared(
        self, workspace: str, ready: list[Ready], rules: DeliveryPolicy
    ) -> list[Ready]:
        """Template version, sender, variant of each send."""
        campaigns: dict[str, tuple[str, CampaignSpec] | None] = {}
        templates: dict[str, str] = {}
        out: list[Ready] = []
        for item in ready:
            send = item.send
            sender = sender_from_json(send.sender)
            item.template = send.template
            item.subject_variant = send.subject_variant
            item.preheader_variant = send.preheader_variant
            if send.campaign_id:
                if send.campaign_id not in campaigns:
                    record = await self.db.run(self.store.get_campaign, workspace, send.campaign_id)
                    campaigns[send.campaign_id] = (
                        None
                        if record is None
                        else (
                            record.template_version,
                            campaign_spec(workspace, pb.Campaign.FromString(record.spec)),
                        )
                    )
                found = campaigns[send.campaign_id]
                if found is None:
                    await self._final(send, SendState.CANCELLED, "campaign not found")
                    continue
                version, spec = found
                item.campaign = resource_name(workspace, "campaigns", send.campaign_id)
                sender = spec.sender
                item.template = version or spec.template
                variant_key = send.variant or await self._bandit(workspace, send, spec)
                for variant in spec.experiment.variants:
                    if variant.key == variant_key:
                        item.template = variant.template_version or item.template
                        item.subject_variant = item.subject_variant or variant.subject_variant
                        item.preheader_variant = variant.preheader_variant
            elif send.journey_id:
                item.campaign = resource_name(workspace, "journeys", send.journey_id)
            item.sender = Sender(
                sender.from_address or rules.default_sender.from_address,
                sender.from_name or rules.default_sender.from_name,
                sender.reply_to or rules.default_sender.reply_to,
                sender.provider or rules.default_sender.provider or "smtp",
            )
            if not item.sender.from_address:
                await self._final(
                    send,
                    SendState.PARKED,
                    "no sender address: set one on the campaign or step, "
                    "or a default sender in the delivery policy",
                )
                continue
            if "/versions/" not in item.template:
                if item.template not in templates:
                    try:
                        templates[item.template] = (
                            await self.directory.template(item.template)
                        ).version
                    except MailwrightError as error:
                        templates[item.template] = ""
                        log.warning("template %s unusable: %s", item.template, error.message)
                if not templates[item.template]:
                    await self._final(
                        send, SendState.PARKED, f"template {item.template} is not published"
                    )
                    continue
                item.template = templates[item.template]
            out.append(item)
        return out

    async def _bandit(self, workspace: str, send: SendRecord, spec: CampaignSpec) -> str:
        experiment = spec.experiment
        if experiment.kind is not ExperimentKind.BANDIT or send.holdout:
            return ""
        results = await self.db.run(
            self.store.variant_results,
            workspace,
            send.campaign_id,
            METRIC_COLUMN[experiment.metric.value],
        )
        arms = {v.key: results.get(v.key, (0, 0, 0.0, 0.0))[:2] for v in experiment.variants}
        choice = experiments.thompson_choice(arms, experiments.send_rng(send.id))
        subject = next(v.subject_variant for v in experiment.variants if v.key == choice)
        await self.db.run(self.store.set_variant, send.id, self.owner, choice, subject)
        return choice

    async def _rendered(self, workspace: str, ready: list[Ready]) -> list[Ready]:
        groups: dict[tuple[str, str, str, str, str], list[Ready]] = defaultdict(list)
        for item in ready:
            s = item.sender
            groups[(item.template, s.from_address, s.from_name, s.reply_to, item.campaign)].append(
                item
            )
        out: list[Ready] = []
        for (version, address, name, reply_to, campaign), items in groups.items():
            options = render_pb2.RenderOptions(
                from_address=address,
                from_name=name,
                reply_to=reply_to,
                track=True,
                # Not render's MIME: its Message-ID is new at every render, and a retried
                # send must carry the same one. The provider builds the message from the
                # parts and derives the Message-ID from the send's idempotency key.
                mime=False,
                campaign=campaign,
            )
            for start in range(0, len(items), 1000):
                chunk = items[start : start + 1000]
                request = render_pb2.RenderBatchRequest(version=version, options=options)
                for item in chunk:
                    request.recipients.append(_render_recipient(item))
                try:
                    response = await self.directory.render(request)
                except Unavailable:
                    await self._release([i.send for i in chunk], self.clock() + UNAVAILABLE_DELAY)
                    continue
                except MailwrightError as error:
                    for item in chunk:
                        await self._final(
                            item.send, SendState.PARKED, f"render refused: {error.message}"
                        )
                    continue
                results = {r.send_id: r for r in response.results}
                for item in chunk:
                    result = results.get(item.send.id)
                    if result is None or result.error:
                        why = result.error if result is not None else "no result"
                        code = result.error_code if result is not None else "missing"
                        await self._final(
                            item.send, SendState.PARKED, f"render failed: {code}: {why}"
                        )
                        continue
                    item.message = _outbound(workspace, item, result.message)
                    out.append(item)
        return out

    async def _allowed(self, ready: list[Ready]) -> list[Ready]:
        out = []
        for item in ready:
            assert item.message is not None
            veto = self.plugins.hook.mailwright_before_send(message=item.message)
            if isinstance(veto, SendVeto):
                await self._final(
                    item.send, SendState.SKIPPED, f"vetoed ({veto.code}): {veto.reason}"
                )
                continue
            out.append(item)
        return out

    async def _hand_over(
        self, workspace: str, name: str, items: list[Ready], rules: DeliveryPolicy
    ) -> None:
        try:
            provider = await self.providers.get(name)
        except MailwrightError as error:
            for item in items:
                await self._final(item.send, SendState.PARKED, error.message)
            return
        size = chunk_size(provider, len(items))
        # Two chunks in flight: one is recorded while the next is with the provider.
        gate = asyncio.Semaphore(2)

        async def hand(chunk: list[Ready]) -> None:
            async with gate:
                await self._send_chunk(workspace, name, provider, chunk, rules)

        await asyncio.gather(
            *(hand(items[start : start + size]) for start in range(0, len(items), size))
        )

    async def _send_chunk(
        self,
        workspace: str,
        name: str,
        provider: EmailProvider,
        chunk: list[Ready],
        rules: DeliveryPolicy,
    ) -> None:
        await self.limiter.acquire(
            name,
            provider.rate_limit.per_second,
            provider.rate_limit.burst,
            len(chunk),
            rules.provider_rate_per_second,
            workspace,
        )
        # Confirmed chunk by chunk, after the wait for tokens: the lease is renewed for the
        # hand-over however slow the provider's rate, and a pause stops the next chunk.
        now = self.clock()
        kept = await self.db.run(
            self.store.confirm_sends,
            [i.send.id for i in chunk],
            self.owner,
            now,
            now + self.settings.send_lease,
        )
        chunk = [i for i in chunk if i.send.id in kept]
        if not chunk:
            return
        messages = [i.message for i in chunk if i.message is not None]
        started = time.perf_counter()
        try:
            outcomes = list(await provider.send_batch(messages))
        except ProviderError as error:
            outcomes = [SendOutcome(m.send_id, error=error) for m in messages]
        except Exception as error:  # a provider bug must not lose the batch
            log.exception("provider %s failed a whole batch", name)
            failure = ProviderError(ErrorKind.TRANSIENT, f"provider failed: {type(error).__name__}")
            outcomes = [SendOutcome(m.send_id, error=failure) for m in messages]
        telemetry.HAND_OVER.record(time.perf_counter() - started, {"provider": name})
        by_id = {o.send_id: o for o in outcomes}
        results = [
            (
                item,
                by_id.get(item.send.id)
                or SendOutcome(
                    item.send.id,
                    error=ProviderError(ErrorKind.TRANSIENT, "no outcome returned"),
                ),
            )
            for item in chunk
        ]
        await self._record_accepted(name, [(i, o) for i, o in results if o.ok])
        for item, outcome in results:
            if not outcome.ok:
                await self._record(item, name, outcome, rules)
        for item, outcome in results:
            assert item.message is not None
            try:
                self.plugins.hook.mailwright_after_send(message=item.message, outcome=outcome)
            except Exception:
                log.exception("a mailwright_after_send hook failed for %s", item.send.id)

    async def _record_accepted(
        self, provider: str, accepted: list[tuple[Ready, SendOutcome]]
    ) -> None:
        """The provider took these: recorded in one transaction, each with its event."""
        if not accepted:
            return
        now = self.clock()
        records = [
            Accepted(
                item.send.id,
                provider,
                outcome.provider_message_id or "",
                email_hash(item.recipient.email),
                (
                    email_event(
                        item.send,
                        "Email Sent",
                        "sent",
                        now,
                        address=item.recipient.email,
                        provider=provider,
                    ),
                ),
            )
            for item, outcome in accepted
        ]
        await self.db.run(self.store.mark_sent_many, records, now)
        telemetry.count("sent", provider, len(records))
        self.notify_outbox()
        log.debug("%d sends accepted by %s", len(records), provider)

    async def _record(
        self, item: Ready, provider: str, outcome: SendOutcome, rules: DeliveryPolicy
    ) -> None:
        send = item.send
        now = self.clock()
        attempt = send.attempts + 1
        if outcome.error is None:
            await self._record_accepted(provider, [(item, outcome)])
            return
        error = outcome.error
        detail = f"{error.kind.value}: {error.detail}" + (f" ({error.code})" if error.code else "")
        if error.kind is ErrorKind.HARD_BOUNCE:
            event = email_event(
                send,
                "Email Bounced",
                "bounced",
                now,
                address=item.recipient.email,
                bounce_type="hard",
                reason=detail,
            )
            await self.db.run(
                self.store.mark_final,
                send.id,
                SendState.BOUNCED,
                detail,
                now,
                [event],
                (
                    send.workspace,
                    email_hash(item.recipient.email),
                    SuppressionReason.HARD_BOUNCE.value,
                ),
                provider,
                self.owner,
            )
            telemetry.count("bounced", provider)
            return
        if error.kind is ErrorKind.SOFT_BOUNCE:
            suppressed = await self.db.run(
                self.store.soft_bounce,
                send.workspace,
                f"{send.id}:soft:{attempt}",
                email_hash(item.recipient.email),
                rules.soft_bounce_limit,
                now,
            )
            if suppressed:
                await self._final(
                    send,
                    SendState.PARKED,
                    f"{detail}; address suppressed after repeated soft bounces",
                    provider,
                )
                return
        if error.retryable and not self.backoff.exhausted(attempt):
            delay = self.backoff.delay(attempt, error.retry_after)
            await self.db.run(self.store.mark_retry, send.id, self.owner, now + delay, detail, now)
            telemetry.count("retried", provider)
            return
        if error.retryable:
            detail = f"gave up after {attempt} attempts: {detail}"
        if error.kind is ErrorKind.AUTH:
            log.error("provider %s refused our credentials; send %s parked", provider, send.id)
        await self._final(send, SendState.PARKED, detail, provider)

    # -- small helpers ------------------------------------------------------------------

    async def _final(
        self, send: SendRecord, state: SendState, reason: str, provider: str = ""
    ) -> None:
        telemetry.count(state.value, provider)
        await self.db.run(
            self.store.mark_final,
            send.id,
            state,
            reason,
            self.clock(),
            (),
            None,
            provider,
            self.owner,
        )

    async def _release(self, sends: Sequence[SendRecord], due: datetime) -> None:
        await self.db.run(
            self.store.release_sends, [s.id for s in sends], self.owner, due, self.clock()
        )


def _render_recipient(item: Ready) -> render_pb2.Recipient:
    person = item.recipient
    traits = struct_pb2.Struct()
    traits.update(_json_safe(person.traits))
    context = struct_pb2.Struct()
    if item.send.context:
        context.update(json.loads(item.send.context))
    return render_pb2.Recipient(
        send_id=item.send.id,
        profile_id=person.profile_id,
        email=person.email,
        traits=traits,
        segments=[item.send.segment] if item.send.segment else [],
        timezone=person.timezone,
        locale=person.locale,
        context=context,
        subject_variant=item.subject_variant,
        preheader_variant=item.preheader_variant,
    )


def _json_safe(values: dict[str, object]) -> dict[str, Any]:
    safe: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return safe


def _outbound(workspace: str, item: Ready, rendered: render_pb2.RenderedMessage) -> OutboundMessage:
    sender = item.sender
    tag = item.send.campaign_id or item.send.journey_id or "transactional"
    return OutboundMessage(
        send_id=item.send.id,
        idempotency_key=item.send.idempotency_key,
        from_address=formataddr((sender.from_name, sender.from_address))
        if sender.from_name
        else sender.from_address,
        to_address=item.recipient.email,
        subject=rendered.subject,
        html=rendered.html or None,
        text=rendered.text or None,
        headers=Headers(dict(rendered.headers)),
        tags=(tag, item.send.category.value),
        workspace=workspace,
    )


def category_of(value: Category) -> str:
    return value.value
