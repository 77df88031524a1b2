"""The journey definition checks and the step machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailwright.errors import InvalidArgument
from mailwright_delivery.journeys import (
    Branch,
    Definition,
    EventSpec,
    Exit,
    ExitReason,
    PastEntry,
    ReentryPolicy,
    Resume,
    SendEmail,
    Step,
    Trigger,
    TriggerKind,
    Wait,
    branches_ahead,
    may_enter,
    resume,
    start,
    validate,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NO_ORDER = 'did not perform "Order Completed" in last 1 hour'

CART = Definition(
    trigger=Trigger(TriggerKind.EVENT, EventSpec("Checkout Started", "total > 20")),
    steps=(
        Step("wait-1h", Wait(duration=timedelta(hours=1)), next="ordered"),
        Step("ordered", Branch(NO_ORDER, then_step="reminder", else_step="done")),
        Step("reminder", SendEmail("cart-reminder"), next="wait-1d"),
        Step("wait-1d", Wait(duration=timedelta(days=1)), next="incentive"),
        Step("incentive", SendEmail("cart-incentive")),
        Step("done", Exit()),
    ),
    goal=EventSpec("Order Completed"),
)


def never(_rule: str) -> bool:
    raise AssertionError("no branch expected")


def test_the_cart_journey_is_valid() -> None:
    validate(CART)


def test_entering_waits_one_hour() -> None:
    outcome = start(CART, NOW, never)
    assert outcome.sends == ()
    assert outcome.waiting is not None
    assert outcome.waiting.wake_at == NOW + timedelta(hours=1)


def test_after_the_wait_a_person_without_an_order_gets_the_reminder_then_waits_a_day() -> None:
    later = NOW + timedelta(hours=1)
    outcome = resume(CART, "wait-1h", Resume.TIMER, later, lambda rule: rule == NO_ORDER)
    assert [s.step_id for s in outcome.sends] == ["reminder"]
    assert outcome.waiting is not None
    assert (outcome.waiting.step_id, outcome.waiting.wake_at) == (
        "wait-1d",
        later + timedelta(days=1),
    )


def test_a_person_who_ordered_leaves_at_the_branch() -> None:
    outcome = resume(CART, "wait-1h", Resume.TIMER, NOW, lambda _rule: False)
    assert outcome.sends == ()
    assert outcome.exit is ExitReason.EXIT_STEP


def test_the_last_send_completes_the_journey() -> None:
    outcome = resume(CART, "wait-1d", Resume.TIMER, NOW, never)
    assert [s.step_id for s in outcome.sends] == ["incentive"]
    assert outcome.exit is ExitReason.COMPLETED


def test_waiting_for_an_event_continues_on_the_event_or_on_timeout() -> None:
    journey = Definition(
        trigger=Trigger(TriggerKind.SEGMENT_ENTERED, segment="inactive"),
        steps=(
            Step(
                "await",
                Wait(
                    event=EventSpec("Email Opened"),
                    timeout=timedelta(days=3),
                    timeout_step="nudge",
                ),
                next="thanks",
            ),
            Step("thanks", SendEmail("thanks")),
            Step("nudge", SendEmail("nudge")),
        ),
    )
    validate(journey)
    waiting = start(journey, NOW, never).waiting
    assert waiting is not None
    assert waiting.event == EventSpec("Email Opened")
    assert waiting.wake_at == NOW + timedelta(days=3)
    on_event = resume(journey, "await", Resume.EVENT, NOW, never)
    assert [s.step_id for s in on_event.sends] == ["thanks"]
    on_timeout = resume(journey, "await", Resume.TIMER, NOW, never)
    assert [s.step_id for s in on_timeout.sends] == ["nudge"]


def test_a_wait_until_a_past_time_passes_through() -> None:
    journey = Definition(
        trigger=Trigger(TriggerKind.EVENT, EventSpec("Signed Up")),
        steps=(
            Step("launch", Wait(until=NOW - timedelta(days=1)), next="mail"),
            Step("mail", SendEmail("launch")),
        ),
    )
    assert [s.step_id for s in start(journey, NOW, never).sends] == ["mail"]


def test_branches_ahead_stop_at_the_next_wait() -> None:
    assert branches_ahead(CART, "wait-1h") == []
    assert branches_ahead(CART, "ordered") == [NO_ORDER]


def test_event_filters_match_properties() -> None:
    spec = EventSpec("Checkout Started", "total > 20")
    assert spec.matches("Checkout Started", {"total": 25})
    assert not spec.matches("Checkout Started", {"total": 5})
    assert not spec.matches("Order Completed", {"total": 25})


def test_invalid_definitions_name_each_field() -> None:
    bad = Definition(
        trigger=Trigger(TriggerKind.EVENT, EventSpec("Checkout Started", "total >")),
        steps=(
            Step("a", Branch("trait x = ", then_step="nowhere")),
            Step("a", Wait(event=EventSpec("Order Completed"))),
        ),
    )
    with pytest.raises(InvalidArgument) as caught:
        validate(bad)
    fields = {v.field for v in caught.value.violations}
    assert {
        "journey.trigger.event.where",
        "journey.steps[0].branch.rule_text",
        "journey.steps[0].branch.then_step",
        "journey.steps[1].id",
        "journey.steps[1].wait.timeout",
    } <= fields


def test_a_loop_without_a_wait_is_refused() -> None:
    looping = Definition(
        trigger=Trigger(TriggerKind.EVENT, EventSpec("X")),
        steps=(
            Step("a", SendEmail("t"), next="b"),
            Step("b", Branch("trait vip = true", then_step="a", else_step="")),
        ),
    )
    with pytest.raises(InvalidArgument, match="never end"):
        validate(looping)


def test_reentry_policies() -> None:
    past = [PastEntry(NOW - timedelta(days=2), active=False)]
    never_again = Definition(CART.trigger, CART.steps, reentry=ReentryPolicy.NEVER)
    after_exit = Definition(CART.trigger, CART.steps, reentry=ReentryPolicy.AFTER_EXIT)
    delayed = Definition(
        CART.trigger, CART.steps, reentry=ReentryPolicy.AFTER_DELAY, reentry_after=timedelta(days=7)
    )
    assert not may_enter(never_again, past, NOW)
    assert may_enter(after_exit, past, NOW)
    assert not may_enter(after_exit, [PastEntry(NOW, active=True)], NOW)
    assert not may_enter(delayed, past, NOW)
    assert may_enter(delayed, past, NOW + timedelta(days=5))
