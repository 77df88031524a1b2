"""The rules a send must pass just before it goes: suppression and consent, frequency
caps, quiet hours; and what to do after a provider failure (backoff, parking).

Plain decisions over plain values; the pipeline gathers the facts (suppression entries,
window counts from the key-value store, the recipient's zone) and acts on the answers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from mailwright_delivery.model import (
    Category,
    FrequencyCap,
    QuietHours,
    Recipient,
    SuppressionReason,
)
from mailwright_delivery.schedule import local_to_utc, zone

# Suppressions that stop every email, transactional included: the address does not work
# or its owner complained, or an operator said so.
HARD_REASONS = frozenset(
    {
        SuppressionReason.HARD_BOUNCE,
        SuppressionReason.SOFT_BOUNCES,
        SuppressionReason.COMPLAINT,
        SuppressionReason.MANUAL,
        SuppressionReason.ERASED,
    }
)


def suppression_reason(
    recipient: Recipient,
    suppressed: SuppressionReason | None,
    category: Category,
    *,
    require_consent: bool = False,
) -> str | None:
    """Why the send must be skipped, or None when it may go.

    Marketing honours every suppression and the person's email consent (unsubscribed or
    a pending double opt-in; with `require_consent`, only an explicit subscription);
    transactional mail honours only the hard suppressions — a receipt still reaches
    someone who unsubscribed from the newsletter.
    """
    if not recipient.email:
        return "no email address"
    if suppressed is not None and (category is Category.MARKETING or suppressed in HARD_REASONS):
        return f"suppressed: {suppressed.value}"
    if category is Category.MARKETING:
        if recipient.consent in ("unsubscribed", "pending"):
            return f"no consent: {recipient.consent}"
        if require_consent and recipient.consent != "subscribed":
            return "no consent: not subscribed"
    return None


WAITING_FOR_ADDRESS = "waiting for an email address"
# A send waiting for an address looks again after as long as it has waited so far (so
# about log2(wait) looks), at least this soon and at most this late.
ADDRESS_RECHECK_MIN = timedelta(seconds=1)
ADDRESS_RECHECK_MAX = timedelta(minutes=1)


def address_recheck(created_at: datetime, now: datetime, wait: timedelta) -> datetime | None:
    """When a send whose person has no email address yet looks again, or None when it
    has waited `wait` since it was created (it is then skipped).

    A journey's trigger and the person's address can arrive on different bus topics, in
    either order: a visitor's product view may be applied before the sign-up sent just
    after it. The address (pushed sooner by the `profiles.changed` that brings it) is
    worth a short wait; a person who never gets one is skipped in the end.
    """
    deadline = created_at + wait
    if now >= deadline:
        return None
    waited = max(now - created_at, timedelta(0))
    delay = min(max(waited, ADDRESS_RECHECK_MIN), ADDRESS_RECHECK_MAX)
    return min(now + delay, deadline)


def cap_key(workspace: str, profile_id: str, cap: FrequencyCap) -> str:
    return f"cap:{workspace}:{profile_id}:{int(cap.window.total_seconds())}"


def caps_exceeded(counts: Sequence[int], caps: Sequence[FrequencyCap]) -> FrequencyCap | None:
    """The first cap whose window already holds `max_sends` sends, or None."""
    for count, cap in zip(counts, caps, strict=True):
        if count >= cap.max_sends:
            return cap
    return None


def capped(category: Category) -> bool:
    """Transactional mail is exempt from frequency caps and quiet hours."""
    return category is Category.MARKETING


def in_quiet_hours(local_hour: int, quiet: QuietHours) -> bool:
    if not quiet.enabled:
        return False
    if quiet.start_hour < quiet.end_hour:
        return quiet.start_hour <= local_hour < quiet.end_hour
    return local_hour >= quiet.start_hour or local_hour < quiet.end_hour


def quiet_until(now: datetime, timezone: str, quiet: QuietHours) -> datetime | None:
    """When quiet hours end for a recipient in `timezone`, if `now` is inside them."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    if not in_quiet_hours(local.hour, quiet):
        return None
    day = local.date()
    if quiet.start_hour > quiet.end_hour and local.hour >= quiet.start_hour:
        day += timedelta(days=1)
    end = local_to_utc(day, time(quiet.end_hour), tz)
    return end if end > now else now


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, honouring a provider's Retry-After."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=30)
    max_attempts: int = 6

    def delay(
        self, attempt: int, retry_after: timedelta | None = None, rng: random.Random | None = None
    ) -> timedelta:
        """The wait before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempt - 1))
        jittered = timedelta(seconds=(rng or random).uniform(0, ceiling))
        if retry_after is not None and retry_after > jittered:
            return retry_after
        return jittered

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


def utcnow() -> datetime:
    return datetime.now(UTC)
