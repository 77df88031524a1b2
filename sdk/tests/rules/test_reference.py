"""The reference evaluator gives each node the meaning its docstring states, at the edges.

Convention under test: windows are half-open, ``now - period < t <= now``; date ranges are
``start <= t < end``; nothing after ``now`` exists.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mailwright.rules import (
    EmailSend,
    Event,
    Not,
    Person,
    evaluate,
    parse,
)

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)


def ago(days: float = 0, **kw: float) -> datetime:
    return NOW - timedelta(days=days, **kw)


def ev(name: str, at: datetime, **props: Any) -> Event:
    return Event(name, at, props)


def holds(text: str, person: Person, now: datetime = NOW) -> bool:
    return evaluate(parse(text), person, now)


def with_events(*events: Event) -> Person:
    return Person(events=events)


def with_traits(**traits: Any) -> Person:
    return Person(traits=traits)


# -- windows ------------------------------------------------------------------------------


def test_an_event_at_now_is_inside_the_last_7_days() -> None:
    assert holds('event "A" in last 7 days', with_events(ev("A", NOW)))


def test_an_event_exactly_7_days_old_is_outside_the_last_7_days() -> None:
    assert not holds('event "A" in last 7 days', with_events(ev("A", ago(7))))
    assert holds('event "A" in last 7 days', with_events(ev("A", ago(7) + US)))


def test_events_after_now_do_not_exist_yet() -> None:
    person = with_events(ev("A", NOW + US))
    assert not holds('event "A"', person)
    assert holds('did not perform "A"', person)


def test_a_date_range_includes_its_start_and_excludes_its_end() -> None:
    rule = 'event "A" between 2024-03-01 and 2024-03-02'
    start = datetime(2024, 3, 1, tzinfo=UTC)
    assert holds(rule, with_events(ev("A", start)))
    assert holds(rule, with_events(ev("A", start + DAY - US)))
    assert not holds(rule, with_events(ev("A", start + DAY)))
    assert not holds(rule, with_events(ev("A", start - US)))


def test_a_date_range_reaching_past_now_only_sees_up_to_now() -> None:
    person = with_events(ev("A", datetime(2024, 3, 20, tzinfo=UTC)))
    assert not holds('event "A" between 2024-03-01 and 2024-04-01', person)


def test_counts_compare_with_each_operator() -> None:
    person = with_events(*(ev("A", ago(i)) for i in range(3)))
    for text, expected in [
        ("= 3", True), ("!= 3", False), ("< 3", False), ("<= 3", True),
        ("> 2", True), (">= 4", False),
    ]:  # fmt: skip
        assert holds(f'event "A" count {text}', person) is expected, text


def test_count_zero_and_did_not_perform_hold_for_someone_who_never_did_it() -> None:
    nobody = Person()
    assert holds('event "A" count = 0', nobody)
    assert holds('did not perform "A" in last 90 days', nobody)
    assert not holds('event "A"', nobody)


def test_event_names_match_exactly_and_case_sensitively() -> None:
    assert not holds('event "order completed"', with_events(ev("Order Completed", NOW)))


def test_filters_must_all_hold_and_a_missing_property_fails_its_filter() -> None:
    rule = 'event "Order" where (currency = "EUR" and revenue > 10)'
    assert holds(rule, with_events(ev("Order", NOW, currency="EUR", revenue=11)))
    assert not holds(rule, with_events(ev("Order", NOW, currency="EUR", revenue=10)))
    assert not holds(rule, with_events(ev("Order", NOW, currency="EUR")))
    assert not holds('event "Order" where currency != "EUR"', with_events(ev("Order", NOW)))


# -- aggregates -----------------------------------------------------------------------------


def test_sum_over_the_window_compares_with_the_threshold() -> None:
    person = with_events(
        ev("Order", ago(1), revenue=60, currency="EUR"),
        ev("Order", ago(2), revenue=Decimal("40.5"), currency="EUR"),
        ev("Order", ago(3), revenue=1000, currency="USD"),
        ev("Order", ago(100), revenue=1000, currency="EUR"),
    )
    rule = 'sum(revenue) of event "Order" where currency = "EUR" in last 90 days'
    assert holds(f"{rule} > 100", person)
    assert not holds(f"{rule} > 100.5", person)


def test_sum_of_nothing_is_zero_but_average_of_nothing_has_no_value() -> None:
    nobody = Person()
    assert holds('sum(revenue) of event "Order" < 100', nobody)
    assert not holds('avg(revenue) of event "Order" < 100', nobody)
    assert not holds('avg(revenue) of event "Order" >= 100', nobody)
    assert not holds('min(revenue) of event "Order" < 100', nobody)


def test_aggregates_leave_out_missing_and_non_numeric_values() -> None:
    person = with_events(
        ev("Order", NOW, revenue=10),
        ev("Order", NOW, revenue=20.0),
        ev("Order", NOW, revenue="30"),
        ev("Order", NOW, revenue=True),
        ev("Order", NOW),
    )
    assert holds('avg(revenue) of event "Order" = 15', person)
    assert holds('min(revenue) of event "Order" = 10', person)
    assert holds('max(revenue) of event "Order" = 20', person)
    assert holds('sum(revenue) of event "Order" = 30', person)


# -- traits ----------------------------------------------------------------------------------


def test_a_missing_trait_fails_every_comparison_but_not_exists() -> None:
    nobody = Person()
    for test in ['= "FR"', '!= "FR"', 'in ["FR"]', 'not in ["FR"]', 'contains "F"', "exists"]:
        assert not holds(f"trait country {test}", nobody), test
    assert holds("trait country not exists", nobody)
    assert holds('not trait country = "FR"', nobody)


def test_a_null_trait_counts_as_missing() -> None:
    assert holds("trait country not exists", with_traits(country=None))


def test_values_are_not_coerced_between_kinds() -> None:
    assert not holds("trait age = 5", with_traits(age="5"))
    assert holds("trait age != 5", with_traits(age="5"))
    assert not holds("trait vip = true", with_traits(vip=1))
    assert not holds("trait age > 1", with_traits(age="5"))


def test_numbers_compare_by_value_across_int_float_and_decimal() -> None:
    assert holds("trait score = 0.1", with_traits(score=0.1))
    assert holds("trait score = 5", with_traits(score=5.0))
    assert holds("trait score = 5", with_traits(score=Decimal("5.00")))
    assert holds("trait score in [1, 5]", with_traits(score=5))


def test_contains_reads_substrings_of_strings_and_elements_of_lists() -> None:
    assert holds('trait email contains "@example"', with_traits(email="ann@example.com"))
    assert holds('trait tags contains "vip"', with_traits(tags=["new", "vip"]))
    assert not holds('trait tags contains "vi"', with_traits(tags=["vip"]))
    assert holds("trait sizes contains 42", with_traits(sizes=[41, 42.0]))


def test_string_comparisons_are_case_sensitive() -> None:
    assert not holds('trait country = "fr"', with_traits(country="FR"))
    assert holds('trait email starts with "ann"', with_traits(email="ann@x"))
    assert not holds('trait email starts with "Ann"', with_traits(email="ann@x"))


@pytest.mark.parametrize(
    "value",
    ["2024-01-15", "2024-01-15T00:00:00Z", date(2024, 1, 15), datetime(2024, 1, 15)],
)
def test_trait_dates_are_read_from_iso_strings_dates_and_datetimes(value: object) -> None:
    person = with_traits(signup=value)
    assert holds("trait signup before 2024-01-16", person)
    assert holds("trait signup after 2024-01-14", person)
    assert not holds("trait signup before 2024-01-15", person)
    assert not holds("trait signup after 2024-01-15", person)


def test_a_trait_that_is_not_a_date_fails_date_conditions() -> None:
    person = with_traits(signup="soon")
    assert not holds("trait signup before 2030-01-01", person)
    assert not holds("trait signup not within last 30 days", person)


def test_within_last_30_days_is_half_open() -> None:
    rule = "trait last_purchase within last 30 days"
    assert holds(rule, with_traits(last_purchase=NOW))
    assert holds(rule, with_traits(last_purchase=ago(30) + US))
    assert not holds(rule, with_traits(last_purchase=ago(30)))
    assert not holds(rule, with_traits(last_purchase=NOW + US))


def test_not_within_needs_a_date_unlike_not_of_within() -> None:
    assert holds("trait last_purchase not within last 30 days", with_traits(last_purchase=ago(31)))
    assert holds(
        "trait last_purchase not within last 30 days", with_traits(last_purchase=NOW + DAY)
    )
    assert not holds("trait last_purchase not within last 30 days", Person())
    assert holds("not trait last_purchase within last 30 days", Person())


# -- sequences -------------------------------------------------------------------------------


def test_then_within_includes_the_deadline_and_excludes_the_same_instant() -> None:
    rule = 'event "A" then "B" within 1 day'
    a = ago(5)
    assert holds(rule, with_events(ev("A", a), ev("B", a + DAY)))
    assert not holds(rule, with_events(ev("A", a), ev("B", a + DAY + US)))
    assert not holds(rule, with_events(ev("A", a), ev("B", a)))
    assert not holds(rule, with_events(ev("B", a), ev("A", a + US)))


def test_then_no_is_false_until_the_wait_is_over() -> None:
    rule = parse('event "A" then no "B" within 7 days')
    a = datetime(2024, 3, 1, tzinfo=UTC)
    person = with_events(ev("A", a))
    assert not evaluate(rule, person, a)
    assert not evaluate(rule, person, a + 7 * DAY - US)
    assert evaluate(rule, person, a + 7 * DAY)


def test_then_no_is_broken_by_b_up_to_and_at_the_deadline_but_not_after() -> None:
    rule = parse('event "A" then no "B" within 7 days')
    a = datetime(2024, 3, 1, tzinfo=UTC)
    later = a + 30 * DAY
    assert not evaluate(rule, with_events(ev("A", a), ev("B", a + 7 * DAY)), later)
    assert evaluate(rule, with_events(ev("A", a), ev("B", a + 7 * DAY + US)), later)
    assert evaluate(rule, with_events(ev("A", a), ev("B", a - DAY)), later)


def test_any_anchor_may_satisfy_then_no() -> None:
    rule = parse('event "A" then no "B" within 1 day')
    a = datetime(2024, 3, 1, tzinfo=UTC)
    person = with_events(ev("A", a), ev("B", a + DAY / 2), ev("A", a + 2 * DAY))
    assert not evaluate(rule, person, a + 3 * DAY - US)
    assert evaluate(rule, person, a + 3 * DAY)


def test_a_count_on_the_first_step_anchors_at_the_kth_event() -> None:
    rule = parse('event "View" count > 2 then no "Buy" within 7 days')
    t = datetime(2024, 3, 1, tzinfo=UTC)
    views = [ev("View", t), ev("View", t + DAY), ev("View", t + 2 * DAY)]
    assert not evaluate(rule, with_events(*views[:2]), t + 30 * DAY)
    assert not evaluate(rule, with_events(*views), t + 9 * DAY - US)
    assert evaluate(rule, with_events(*views), t + 9 * DAY)
    # A purchase after the third view within 7 days cancels that anchor.
    assert not evaluate(rule, with_events(*views, ev("Buy", t + 3 * DAY)), t + 9 * DAY)


def test_the_first_step_window_slides_with_now() -> None:
    rule = parse('event "View" count >= 3 in last 14 days then no "Buy" within 7 days')
    t = datetime(2024, 3, 1, tzinfo=UTC)
    person = with_events(ev("View", t), ev("View", t + DAY), ev("View", t + 2 * DAY))
    assert evaluate(rule, person, t + 9 * DAY)
    assert evaluate(rule, person, t + 14 * DAY - US)
    # The first view leaves the 14 days: only two views remain in the window.
    assert not evaluate(rule, person, t + 14 * DAY)


def test_a_window_not_longer_than_the_wait_is_never_true_for_then_no() -> None:
    rule = parse('event "A" in last 7 days then no "B" within 7 days')
    a = datetime(2024, 3, 1, tzinfo=UTC)
    for offset in (0, 1, 6, 7, 8, 30):
        assert not evaluate(rule, with_events(ev("A", a)), a + offset * DAY)


def test_per_pairs_events_on_equal_property_values() -> None:
    rule = parse('event "View" count >= 2 then no "Buy" within 7 days per product_id')
    t = datetime(2024, 3, 1, tzinfo=UTC)
    later = t + 30 * DAY
    views = [ev("View", t, product_id="p1"), ev("View", t + DAY, product_id="p1")]
    assert evaluate(rule, with_events(*views), later)
    assert evaluate(rule, with_events(*views, ev("Buy", t + 2 * DAY, product_id="p2")), later)
    assert not evaluate(rule, with_events(*views, ev("Buy", t + 2 * DAY, product_id="p1")), later)
    # Views of two different products are not two views of one product.
    mixed = [ev("View", t, product_id="p1"), ev("View", t + DAY, product_id="p2")]
    assert not evaluate(rule, with_events(*mixed), later)


def test_per_ignores_events_without_the_property_and_pairs_equal_numbers() -> None:
    rule = parse('event "View" then "Buy" within 1 day per sku')
    t = datetime(2024, 3, 1, tzinfo=UTC)
    assert not evaluate(rule, with_events(ev("View", t), ev("Buy", t + DAY)), t + DAY)
    assert evaluate(rule, with_events(ev("View", t, sku=7), ev("Buy", t + DAY, sku=7.0)), t + DAY)


# -- email engagement and memberships --------------------------------------------------------


def send(send_id: str, sent: datetime, **actions: Any) -> EmailSend:
    return EmailSend(send_id, sent, **actions)


def test_any_of_last_n_emails_looks_only_at_the_n_most_recent_sends() -> None:
    person = Person(
        emails=(
            send("1", ago(10), opens=(ago(9),)),
            send("2", ago(5)),
            send("3", ago(3)),
        )
    )
    assert not holds("opened any of last 2 emails", person)
    assert holds("opened any of last 3 emails", person)


def test_machine_opens_never_count() -> None:
    person = Person(emails=(send("1", ago(2), machine_opens=(ago(1),)),))
    assert not holds("opened any of last 5 emails", person)
    assert not holds("opened an email in last 7 days", person)


def test_sends_and_opens_after_now_do_not_count() -> None:
    person = Person(emails=(send("1", ago(2), opens=(NOW + US,)), send("2", NOW + US)))
    assert not holds("opened any of last 2 emails", person)
    # At NOW + 1µs the second send exists and the first one's open has happened.
    assert holds("opened any of last 2 emails", person, NOW + US)
    assert not holds("opened any of last 1 emails", person, NOW + US)


def test_sends_at_the_same_instant_are_ordered_by_send_id() -> None:
    person = Person(emails=(send("a", ago(1), opens=(NOW,)), send("b", ago(1))))
    assert not holds("opened any of last 1 emails", person)
    assert holds("opened at least 1 of last 2 emails", person)


def test_at_least_k_of_last_n_counts_sends_with_the_action() -> None:
    person = Person(
        emails=(
            send("1", ago(4), clicks=(ago(3),)),
            send("2", ago(3), opens=(ago(2),)),
            send("3", ago(2)),
        )
    )
    assert holds("opened or clicked at least 2 of last 3 emails", person)
    assert not holds("opened at least 2 of last 3 emails", person)
    assert holds("clicked any of last 3 emails", person)


def test_engagement_in_a_window_counts_distinct_sends_by_action_time() -> None:
    person = Person(
        emails=(
            send("1", ago(40), opens=(ago(29), ago(28))),
            send("2", ago(40), opens=(ago(31),)),
        )
    )
    assert holds("opened an email in last 30 days", person)
    assert not holds("opened at least 2 emails in last 30 days", person)
    assert holds("opened at least 2 emails in last 32 days", person)


def test_segment_membership_reads_the_given_memberships() -> None:
    person = Person(segments=frozenset({"vip"}))
    assert holds('in segment "vip"', person)
    assert not holds('not in segment "vip"', person)
    assert holds('not in segment "inactive"', person)


# -- structure ---------------------------------------------------------------------------


def test_and_or_not_combine_as_in_logic() -> None:
    person = Person(traits={"country": "FR"}, segments=frozenset({"vip"}))
    assert holds('trait country = "FR" and in segment "vip"', person)
    assert not holds('trait country = "DE" and in segment "vip"', person)
    assert holds('trait country = "DE" or in segment "vip"', person)
    assert evaluate(Not(parse('trait country = "DE"')), person, NOW)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(parse('event "A"'), Person(), datetime(2024, 1, 1))
