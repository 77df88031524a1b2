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

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import MailwrightError, Unavailable
from mailwright.extensions import SendVeto
from mailwright.names import resource_name
from mailwright.plugins import Plugins
from mailwright.render.v1 import render_pb2
from mailwright.runtime.bus.telemetry import continue_traces
from mailwright.runtime.db import Database
from mailwright.runtime.kv import KeyValueStore
from mailwright_delivery import experiments, policy
from mailwright_delivery.convert import campaign_spec, sender_from_json
from mailwright_delivery.directory import Directory
from mailwright_delivery.handover import HandOver
from mailwright_delivery.model import (
    CampaignSpec,
    DeliveryPolicy,
    ExperimentKind,
    Recipient,
    Sender,
    SendState,
    email_hash,
)
from mailwright_delivery.outbound import Ready, outbound_message, render_recipient
from mailwright_delivery.providers import Policies, Providers, RateLimiter
from mailwright_delivery.records import SendRecord
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore

log = logging.getLogger(__name__)

UNAVAILABLE_DELAY = timedelta(seconds=5)
METRIC_COLUMN = {
    "opens": "open_at",
    "clicks": "click_at",
    "conversions": "conversions",
    "revenue": "revenue",
}


class SendWorker(HandOver):
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
        notify_campaigns: Callable[[], None] = lambda: None,
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
        self.notify_campaigns = notify_campaigns
        self.backoff = policy.Backoff(
            settings.backoff_base, settings.backoff_cap, settings.max_attempts
        )
        # Sends some call of `deliver` is seeing to. The replica's workers share one lease
        # owner, so when a slow hand-over outlasts the lease and a sibling claims the send
        # again, the lease checks pass for both: this set is what stops the second.
        self._in_hand: set[str] = set()

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
        # A full claim leaves more due: no campaign of it is done yet, or, should the
        # claim have taken exactly the last sends, the scheduler's next look finds it so.
        await self.deliver(claimed, finishing=len(claimed) < self.settings.batch_size)
        return len(claimed)

    async def deliver(self, claimed: Sequence[SendRecord], finishing: bool = True) -> None:
        """See sends claimed by this worker's owner to an outcome (from `tick`, or written
        already claimed by a journey move that hands them over at once). `finishing`: the
        queue may now be empty, so a campaign of these sends may be done."""
        mine = [send for send in claimed if send.id not in self._in_hand]
        if len(mine) < len(claimed):
            # Their lease ran out while another call here still has them: it finishes
            # them (the new lease is this replica's too, so its outcome is recorded).
            log.info(
                "%d sends claimed again while in hand here; left to it", len(claimed) - len(mine)
            )
        self._in_hand.update(send.id for send in mine)
        try:
            await self._deliver(mine)
        finally:
            self._in_hand.difference_update(send.id for send in mine)
        if finishing and any(send.campaign_id for send in claimed):
            self.notify_campaigns()  # a campaign may be done: let the scheduler look now

    async def _deliver(self, claimed: Sequence[SendRecord]) -> None:
        by_workspace: dict[str, list[SendRecord]] = defaultdict(list)
        for send in claimed:
            by_workspace[send.workspace].append(send)
        for workspace, sends in by_workspace.items():
            try:
                with continue_traces(
                    "deliver sends",
                    (send.trace_parent for send in sends),
                    {"mailwright.workspace": workspace, "mailwright.sends": len(sends)},
                ):
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
        no_address: list[tuple[SendRecord, datetime]] = []
        for send in sends:
            if send.profile_id:
                found = recipients.get(send.profile_id)
                if found is None:
                    await self._final(send, SendState.SKIPPED, "profile not found")
                    continue
                if not found.email and send.journey_id:
                    again = policy.address_recheck(send.created_at, now, self.settings.address_wait)
                    if again is not None:
                        no_address.append((send, again))
                        continue
                    await self._final(
                        send,
                        SendState.SKIPPED,
                        f"no email address within {self.settings.address_wait}",
                    )
                    continue
                candidates.append(Ready(send, found))
            elif send.address:
                candidates.append(Ready(send, Recipient("", send.address)))
            else:
                await self._final(send, SendState.SKIPPED, "no recipient")
        if no_address:
            await self._wait_for_address(no_address, now)
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
            reason = f"quiet hours until {until.isoformat(timespec='minutes')}"
            for send in held:
                self._note(send, reason)
            await self.db.run(
                self.store.requeue_sends, [(s.id, until) for s in held], self.owner, reason, now
            )
        return passed

    async def _wait_for_address(
        self, waiting: list[tuple[SendRecord, datetime]], now: datetime
    ) -> None:
        """Journey sends whose person has no address yet: back to the queue, looked at
        again later (at once when a `profiles.changed` brings an address)."""
        for send, _ in waiting:
            if send.reason != policy.WAITING_FOR_ADDRESS:  # said once, not at every look
                self._note(send, f"{policy.WAITING_FOR_ADDRESS} (profile {send.profile_id})")
        await self.db.run(
            self.store.requeue_sends,
            [(send.id, again) for send, again in waiting],
            self.owner,
            policy.WAITING_FOR_ADDRESS,
            now,
        )

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
                    request.recipients.append(render_recipient(item))
                try:
                    response = await self.directory.render(request)
                except Unavailable as error:
                    log.warning("render unavailable (%s); %d sends wait", error.message, len(chunk))
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
                    item.message = outbound_message(workspace, item, result.message)
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
