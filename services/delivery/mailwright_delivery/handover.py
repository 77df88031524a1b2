"""The hand-over half of the send worker: chunks to the provider under the shared rate
limit, each chunk confirmed just before it goes, and every outcome recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from opentelemetry import trace

from mailwright.connectors import EmailProvider, ErrorKind, ProviderError, SendOutcome
from mailwright.connectors.errors import redact
from mailwright.errors import MailwrightError
from mailwright.plugins import Plugins
from mailwright.runtime.db import Database
from mailwright_delivery import policy, telemetry
from mailwright_delivery.events import bounced_event, sent_event
from mailwright_delivery.model import DeliveryPolicy, SendState, SuppressionReason, email_hash
from mailwright_delivery.outbound import Ready
from mailwright_delivery.providers import Providers, RateLimiter, chunk_size
from mailwright_delivery.records import SendRecord
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import Accepted, DeliveryStore

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("mailwright.delivery")


class HandOver:
    """Needs the worker's database, store, providers, limiter, plugins and owner."""

    db: Database
    store: DeliveryStore
    providers: Providers
    limiter: RateLimiter
    plugins: Plugins
    settings: DeliverySettings
    owner: str
    clock: Callable[[], datetime]
    backoff: policy.Backoff
    notify_outbox: Callable[[], None]

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
                # In the trace of the sends (see `Pipeline.tick`): the provider call.
                with _tracer.start_as_current_span(
                    f"send {name}",
                    kind=trace.SpanKind.CLIENT,
                    attributes={"mailwright.provider": name, "mailwright.sends": len(chunk)},
                ):
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
        for item in chunk:
            if item.send.id not in kept:
                # Paused or cancelled since the claim (then back in the queue, held), or
                # its lease taken over by another replica, which sends it.
                self._note(item.send, "not handed over: held, or no longer leased here")
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
                (sent_event(item.send, now, address=item.recipient.email, provider=provider),),
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
            self._note(send, f"bounced: {detail}")
            event = bounced_event(send, now, address=item.recipient.email, reason=detail)
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
        if error.suppress is not None:
            # The provider says never again (a spam complaint, an unsubscribe it holds).
            reason = SuppressionReason(error.suppress)
            self._note(send, f"skipped: {detail}")
            await self.db.run(
                self.store.mark_final,
                send.id,
                SendState.SKIPPED,
                detail,
                now,
                (),
                (send.workspace, email_hash(item.recipient.email), reason.value),
                provider,
                self.owner,
            )
            telemetry.count("skipped", provider)
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
            self._note(send, f"retried in {delay}: {detail}")
            await self.db.run(self.store.mark_retry, send.id, self.owner, now + delay, detail, now)
            telemetry.count("retried", provider)
            return
        if error.retryable:
            detail = f"gave up after {attempt} attempts: {detail}"
        if error.kind is ErrorKind.AUTH:
            log.error("provider %s refused our credentials; send %s parked", provider, send.id)
        await self._final(send, SendState.PARKED, detail, provider)

    # -- small helpers ------------------------------------------------------------------

    def _note(self, send: SendRecord, what: str, level: int = logging.INFO) -> None:
        """A line for what became of a send short of the provider's acceptance. A
        journey's or a transactional send is one person's email, whose fate someone will
        look for: one line each. A campaign's sends are counted in its report, so theirs
        are at debug. Ids only; the reason is redacted of addresses."""
        if send.campaign_id:
            level = logging.DEBUG
        if not log.isEnabledFor(level):
            return
        if send.journey_id:
            origin = f"journey {send.workspace}/{send.journey_id} enrolment {send.enrolment_id}"
        elif send.campaign_id:
            origin = f"campaign {send.workspace}/{send.campaign_id}"
        else:
            origin = f"transactional, {send.workspace}"
        log.log(level, "send %s (%s): %s", send.id, origin, redact(what))

    async def _final(
        self, send: SendRecord, state: SendState, reason: str, provider: str = ""
    ) -> None:
        # Parked: an operator must act (fix, then `sends retry`).
        self._note(
            send,
            f"{state.value}: {reason}",
            logging.WARNING if state is SendState.PARKED else logging.INFO,
        )
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
