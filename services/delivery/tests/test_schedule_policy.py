"""Schedules, quiet hours across DST, caps, suppression rules, backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.errors import InvalidArgument
from mailwright_delivery import policy, schedule
from mailwright_delivery.model import (
    Category,
    FrequencyCap,
    QuietHours,
    Recipient,
    SendAt,
    SendAtBestTime,
    SendAtLocalTime,
    SendNow,
    SuppressionReason,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_send_time_in_the_past_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        schedule.validate(SendAt(NOW - timedelta(hours=1)), NOW)
    assert caught.value.violations[0].field == "schedule.send_time"


def test_a_local_time_is_past_only_once_it_is_past_in_every_zone() -> None:
    # 10:00 on this day has passed in UTC but not yet at UTC-12.
    schedule.validate(SendAtLocalTime("2026-03-01", 10, 0), NOW)
    with pytest.raises(InvalidArgument, match="every time zone"):
        schedule.validate(SendAtLocalTime("2026-02-27", 10, 0), NOW)


def test_local_time_is_due_at_that_wall_clock_in_each_zone() -> None:
    plan = SendAtLocalTime("2026-03-10", 9, 30, "UTC")
    start = schedule.start_time(plan, NOW)
    paris = schedule.due_time(plan, start, timezone="Europe/Paris")
    tokyo = schedule.due_time(plan, start, timezone="Asia/Tokyo")
    assert paris == datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    assert tokyo == datetime(2026, 3, 10, 0, 30, tzinfo=UTC)


def test_an_unknown_zone_uses_the_fallback() -> None:
    plan = SendAtLocalTime("2026-03-10", 9, 0, "America/New_York")
    due = schedule.due_time(plan, NOW, timezone="Mars/Olympus")
    assert due == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)


def test_a_local_time_in_the_spring_forward_gap_is_sent_just_after_it() -> None:
    # Paris skips from 02:00 to 03:00 on 2026-03-29.
    plan = SendAtLocalTime("2026-03-29", 2, 30, "UTC")
    due = schedule.due_time(plan, NOW, timezone="Europe/Paris")
    assert due == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST


def test_best_time_uses_the_persons_best_hour_in_their_zone() -> None:
    plan = SendAtBestTime(NOW, timedelta(days=1))
    due = schedule.due_time(plan, NOW, timezone="Europe/Paris", best_hour=19)
    assert due == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert schedule.due_time(plan, NOW, timezone="Europe/Paris", best_hour=None) == NOW


def test_now_starts_at_once() -> None:
    assert schedule.start_time(SendNow(), NOW) == NOW


def test_throttle_spreads_sends_over_the_hour() -> None:
    assert schedule.throttle_offset(30, 60) == timedelta(minutes=30)
    assert schedule.throttle_offset(30, 0) == timedelta(0)


def test_quiet_hours_hold_marketing_until_they_end_locally() -> None:
    quiet = QuietHours(21, 8)
    late = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    assert policy.quiet_until(late, "Europe/Paris", quiet) == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    noon = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert policy.quiet_until(noon, "Europe/Paris", quiet) is None


def test_quiet_hours_end_at_local_eight_across_the_dst_change() -> None:
    quiet = QuietHours(21, 8)
    # 23:00 CET on the night Paris moves to summer time: 08:00 next morning is CEST (+2).
    night = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert policy.quiet_until(night, "Europe/Paris", quiet) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    # ... and in autumn 08:00 is CET (+1) again.
    autumn = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert policy.quiet_until(autumn, "Europe/Paris", quiet) == datetime(
        2026, 10, 25, 7, 0, tzinfo=UTC
    )


@given(st.integers(0, 23), st.integers(0, 23), st.integers(0, 23))
def test_quiet_hours_contain_exactly_the_hours_between_start_and_end(
    start: int, end: int, hour: int
) -> None:
    quiet = QuietHours(start, end)
    inside = policy.in_quiet_hours(hour, quiet)
    span = [(start + i) % 24 for i in range((end - start) % 24)]
    assert inside == (hour in span)


def test_a_cap_with_its_window_full_stops_marketing() -> None:
    caps = [FrequencyCap(3, timedelta(days=7)), FrequencyCap(1, timedelta(days=1))]
    assert policy.caps_exceeded([2, 0], caps) is None
    assert policy.caps_exceeded([2, 1], caps) == caps[1]
    assert not policy.capped(Category.TRANSACTIONAL)


def test_marketing_honours_unsubscribes_and_consent() -> None:
    person = Recipient("p1", "a@example.com")
    assert policy.suppression_reason(person, None, Category.MARKETING) is None
    assert policy.suppression_reason(
        person, SuppressionReason.UNSUBSCRIBED, Category.MARKETING
    ) == ("suppressed: unsubscribed")
    pending = Recipient("p1", "a@example.com", consent="pending")
    assert policy.suppression_reason(pending, None, Category.MARKETING) == "no consent: pending"
    assert policy.suppression_reason(person, None, Category.MARKETING, require_consent=True) == (
        "no consent: not subscribed"
    )


def test_transactional_mail_ignores_unsubscribes_but_not_bounces() -> None:
    person = Recipient("p1", "a@example.com", consent="unsubscribed")
    assert (
        policy.suppression_reason(person, SuppressionReason.UNSUBSCRIBED, Category.TRANSACTIONAL)
        is None
    )
    assert policy.suppression_reason(
        person, SuppressionReason.HARD_BOUNCE, Category.TRANSACTIONAL
    ) == ("suppressed: hard_bounce")


@given(st.integers(1, 20), st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int, seed: int) -> None:
    backoff = policy.Backoff(timedelta(seconds=2), timedelta(minutes=5))
    delay = backoff.delay(attempt, rng=random.Random(seed))
    ceiling = min(300.0, 2.0 * 2 ** (attempt - 1))
    assert timedelta(0) <= delay <= timedelta(seconds=ceiling)


def test_backoff_honours_retry_after() -> None:
    backoff = policy.Backoff(timedelta(seconds=1), timedelta(seconds=10))
    assert backoff.delay(1, retry_after=timedelta(seconds=60)) == timedelta(seconds=60)


def test_an_address_wait_looks_again_at_doubling_intervals_then_ends() -> None:
    created = NOW
    wait = timedelta(minutes=10)
    looks = []
    now = created
    while (again := policy.address_recheck(created, now, wait)) is not None:
        looks.append(again - now)
        now = again
    assert now == created + wait  # the last look is at the end of the wait, then a skip
    assert looks[:6] == [timedelta(seconds=s) for s in (1, 1, 2, 4, 8, 16)]
    assert max(looks) == policy.ADDRESS_RECHECK_MAX
    assert len(looks) == 16  # 7 in the first 64 s, then one a minute to the end
    assert policy.address_recheck(created, created + wait + timedelta(seconds=1), wait) is None
