"""The demo shop's generator: the same shop for the same arguments, and no event so close
to a whole number of days ago that a rule's window would pass it during a run."""

from __future__ import annotations

import pytest

from mailwright.demo.generate import DAY, MARGIN, clear_of_midnight, generate


def test_the_same_arguments_give_the_same_shop() -> None:
    first, second = generate(300, seed=7), generate(300, seed=7)
    assert first.customers == second.customers
    assert list(first.histories()) == list(second.histories())
    assert list(generate(300, seed=8).histories()) != list(first.histories())


def test_no_event_is_minutes_short_of_a_whole_day_ago() -> None:
    # A window such as "in last 14 days" moves with the clock: an event 13 days 23 h 50 min
    # old leaves it ten minutes into the run, and a segment's size would depend on how
    # long the run took. Every event keeps an hour between it and the next boundary.
    for customer, events in generate(2000, seed=2026).histories():
        for event in events:
            assert event.ago % DAY <= DAY - MARGIN, (customer.archetype, event)


@pytest.mark.parametrize(
    ("ago", "moved"),
    [
        (5 * DAY + 2 * MARGIN, 5 * DAY + 2 * MARGIN),
        (5 * DAY + 10, 5 * DAY + MARGIN),
        (6 * DAY - 10, 6 * DAY - MARGIN),
        (6 * DAY, 6 * DAY + MARGIN),
    ],
)
def test_clear_of_midnight_keeps_the_day(ago: int, moved: int) -> None:
    assert clear_of_midnight(ago) == moved
