"""The text form reads every construct of the rule language into the expected tree."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mailwright.rules import (
    Aggregate,
    And,
    Between,
    DateOperator,
    DidNotPerform,
    EmailAction,
    EventAggregate,
    EventCount,
    EventSpec,
    Ever,
    LastEmailsEngagement,
    LastPeriod,
    Not,
    Operator,
    Or,
    PropertyFilter,
    SegmentMembership,
    Sequence,
    TraitCondition,
    TraitDateCondition,
    TraitWithinLast,
    WindowEngagement,
    filters_match,
    filters_text,
    parse,
    parse_filters,
    parse_located,
)

D = Decimal
DAYS = timedelta(days=1)
JAN1 = datetime(2024, 1, 1, tzinfo=UTC)
FEB1 = datetime(2024, 2, 1, tzinfo=UTC)
FR = TraitCondition("country", Operator.EQ, "FR")
ORDERS_3 = EventCount("Order Completed", Operator.GE, 3, LastPeriod(30 * DAYS))
INACTIVE = SegmentMembership("inactive", negated=True)

TRAITS = [
    ('trait country = "FR"', FR),
    ('trait country == "FR"', FR),
    ("trait age != 3", TraitCondition("age", Operator.NE, D(3))),
    ("trait clv_12m < 10.5", TraitCondition("clv_12m", Operator.LT, D("10.5"))),
    ("trait clv_12m <= 10", TraitCondition("clv_12m", Operator.LE, D(10))),
    ("trait churn_risk > 0.7", TraitCondition("churn_risk", Operator.GT, D("0.7"))),
    ("trait temperature >= -3.5", TraitCondition("temperature", Operator.GE, D("-3.5"))),
    ("trait vip = true", TraitCondition("vip", Operator.EQ, True)),
    ("trait vip = FALSE", TraitCondition("vip", Operator.EQ, False)),
    (
        'trait plan in ["pro", "team", 3]',
        TraitCondition("plan", Operator.IN, ("pro", "team", D(3))),
    ),
    ('trait plan not in ["free"]', TraitCondition("plan", Operator.NOT_IN, ("free",))),
    ('trait tags contains "vip"', TraitCondition("tags", Operator.CONTAINS, "vip")),
    ('trait email starts with "ann"', TraitCondition("email", Operator.STARTS_WITH, "ann")),
    ("trait phone exists", TraitCondition("phone", Operator.EXISTS)),
    ("trait phone not exists", TraitCondition("phone", Operator.NOT_EXISTS)),
    ("trait address.city exists", TraitCondition("address.city", Operator.EXISTS)),
    ("trait `first name` exists", TraitCondition("first name", Operator.EXISTS)),
    ("trait count exists", TraitCondition("count", Operator.EXISTS)),
    (
        "trait signup_date before 2024-01-01",
        TraitDateCondition("signup_date", DateOperator.BEFORE, JAN1),
    ),
    (
        "trait signup_date after 2024-01-01T10:30:00+02:00",
        TraitDateCondition("signup_date", DateOperator.AFTER, JAN1 + timedelta(hours=8.5)),
    ),
    (
        "trait signup_date after 2024-01-01T10:30:15.25Z",
        TraitDateCondition(
            "signup_date", DateOperator.AFTER, JAN1 + timedelta(hours=10.5, seconds=15.25)
        ),
    ),
    (
        "trait last_purchase_date within last 30 days",
        TraitWithinLast("last_purchase_date", 30 * DAYS),
    ),
    (
        "trait last_purchase_date within the last 30d",
        TraitWithinLast("last_purchase_date", 30 * DAYS),
    ),
    (
        "trait last_purchase_date not within last 2 hours",
        TraitWithinLast("last_purchase_date", timedelta(hours=2), negated=True),
    ),
]

EVENTS = [
    ('event "Order Completed"', EventCount("Order Completed")),
    ('event "Order Completed" ever', EventCount("Order Completed")),
    ('event "Order Completed" count >= 3 in last 30 days', ORDERS_3),
    (
        'event "Order Completed" where currency = "EUR" count = 0',
        EventCount(
            "Order Completed",
            Operator.EQ,
            0,
            filters=(PropertyFilter("currency", Operator.EQ, "EUR"),),
        ),
    ),
    (
        'event "Order Completed" where (currency = "EUR" and revenue > 10 and coupon not exists) '
        "count < 2 between 2024-01-01 and 2024-02-01",
        EventCount(
            "Order Completed",
            Operator.LT,
            2,
            Between(JAN1, FEB1),
            (
                PropertyFilter("currency", Operator.EQ, "EUR"),
                PropertyFilter("revenue", Operator.GT, D(10)),
                PropertyFilter("coupon", Operator.NOT_EXISTS),
            ),
        ),
    ),
    (
        'sum(revenue) of event "Order Completed" where currency = "EUR" in last 90 days > 100',
        EventAggregate(
            Aggregate.SUM,
            "revenue",
            "Order Completed",
            Operator.GT,
            D(100),
            LastPeriod(90 * DAYS),
            (PropertyFilter("currency", Operator.EQ, "EUR"),),
        ),
    ),
    (
        'avg(revenue) of event "Order Completed" <= 20.5',
        EventAggregate(Aggregate.AVERAGE, "revenue", "Order Completed", Operator.LE, D("20.5")),
    ),
    (
        'average(revenue) of event "Order Completed" <= 20.5',
        EventAggregate(Aggregate.AVERAGE, "revenue", "Order Completed", Operator.LE, D("20.5")),
    ),
    (
        'min(price) of event "Product Viewed" in last 1 week = 0',
        EventAggregate(
            Aggregate.MIN, "price", "Product Viewed", Operator.EQ, D(0), LastPeriod(7 * DAYS)
        ),
    ),
    (
        'MAX(price) of event "Product Viewed" != 5',
        EventAggregate(Aggregate.MAX, "price", "Product Viewed", Operator.NE, D(5)),
    ),
    (
        'did not perform "Order Completed" in last 90 days',
        DidNotPerform("Order Completed", LastPeriod(90 * DAYS)),
    ),
    (
        'did not perform event "Order Completed" where revenue > 0',
        DidNotPerform("Order Completed", Ever(), (PropertyFilter("revenue", Operator.GT, D(0)),)),
    ),
]

SEQUENCES = [
    (
        'event "Product Viewed" then "Order Completed" within 1 day',
        Sequence(EventSpec("Product Viewed"), EventSpec("Order Completed"), DAYS),
    ),
    (
        'event "Product Viewed" count > 2 in last 7 days then no "Order Completed" within 7 days '
        "per product_id",
        Sequence(
            EventSpec("Product Viewed"),
            EventSpec("Order Completed"),
            7 * DAYS,
            negated=True,
            min_count=3,
            window=LastPeriod(7 * DAYS),
            per="product_id",
        ),
    ),
    (
        'event "Product Viewed" where category = "shoes" count >= 2 then no event "Product Added" '
        "where price > 10 within 90 minutes",
        Sequence(
            EventSpec("Product Viewed", (PropertyFilter("category", Operator.EQ, "shoes"),)),
            EventSpec("Product Added", (PropertyFilter("price", Operator.GT, D(10)),)),
            timedelta(minutes=90),
            negated=True,
            min_count=2,
        ),
    ),
]

ENGAGEMENT = [
    ("opened any of last 5 emails", LastEmailsEngagement(EmailAction.OPENED, 5)),
    ("clicked at least 2 of the last 10 emails", LastEmailsEngagement(EmailAction.CLICKED, 10, 2)),
    (
        "opened or clicked an email in last 30 days",
        WindowEngagement(EmailAction.OPENED_OR_CLICKED, LastPeriod(30 * DAYS)),
    ),
    ("opened any email", WindowEngagement(EmailAction.OPENED)),
    ("opened email", WindowEngagement(EmailAction.OPENED)),
    (
        "clicked at least 3 emails between 2024-01-01 and 2024-02-01",
        WindowEngagement(EmailAction.CLICKED, Between(JAN1, FEB1), 3),
    ),
    ('in segment "loyal-buyers"', SegmentMembership("loyal-buyers")),
    ('not in segment "inactive"', INACTIVE),
]

STRUCTURE = [
    (
        'trait country = "FR" and (event "Order Completed" count >= 3 in last 30 days '
        'or not in segment "inactive")',
        And((FR, Or((ORDERS_3, INACTIVE)))),
    ),
    (
        'trait country = "FR" and in segment "a" or in segment "b"',
        Or((And((FR, SegmentMembership("a"))), SegmentMembership("b"))),
    ),
    ('not trait country = "FR" and in segment "a"', And((Not(FR), SegmentMembership("a")))),
    ('not (trait country = "FR" and in segment "a")', Not(And((FR, SegmentMembership("a"))))),
    ('not not in segment "inactive"', Not(INACTIVE)),
    ('not (in segment "inactive")', Not(SegmentMembership("inactive"))),
    ('((trait country = "FR"))', FR),
    (
        'trait country = "FR" and (in segment "a" and in segment "b")',
        And((FR, And((SegmentMembership("a"), SegmentMembership("b"))))),
    ),
]


@pytest.mark.parametrize(("text", "tree"), TRAITS, ids=[t for t, _ in TRAITS])
def test_trait_conditions_parse(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "tree"), EVENTS, ids=[t for t, _ in EVENTS])
def test_event_conditions_parse(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "tree"), SEQUENCES, ids=[t for t, _ in SEQUENCES])
def test_sequences_parse(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "tree"), ENGAGEMENT, ids=[t for t, _ in ENGAGEMENT])
def test_engagement_and_membership_parse(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "tree"), STRUCTURE, ids=[t for t, _ in STRUCTURE])
def test_and_binds_tighter_than_or_and_parentheses_nest(text: str, tree: object) -> None:
    assert parse(text) == tree


def test_keywords_are_case_insensitive_but_names_and_strings_are_not() -> None:
    text = 'TRAIT Country = "fr" AND Event "Order Completed" COUNT >= 3 In The Last 30 DAYS'
    assert parse(text) == And((TraitCondition("Country", Operator.EQ, "fr"), ORDERS_3))


@pytest.mark.parametrize(
    ("written", "minutes"),
    [("15m", 15), ("15 minutes", 15), ("1 minute", 1), ("90 min", 90), ("2h", 120),
     ("2 hours", 120), ("3 hrs", 180), ("7d", 7 * 1440), ("1 day", 1440), ("2w", 14 * 1440),
     ("1 week", 7 * 1440)],
)  # fmt: skip
def test_durations_are_written_in_minutes_hours_days_or_weeks(written: str, minutes: int) -> None:
    rule = parse(f'event "X" in last {written}')
    assert rule == EventCount("X", window=LastPeriod(timedelta(minutes=minutes)))


def test_strings_take_escapes() -> None:
    rule = parse(r'trait note = "say \"hi\"\\ \n\t\u00e9"')
    assert rule == TraitCondition("note", Operator.EQ, 'say "hi"\\ \n\té')


def test_whitespace_and_newlines_are_free() -> None:
    text = 'trait country = "FR"\n  and\n\t(event "Order Completed" count >= 3\n in last 30 days)'
    assert parse(text) == And(
        (FR, EventCount("Order Completed", Operator.GE, 3, LastPeriod(30 * DAYS)))
    )


def test_a_date_alone_means_midnight_utc() -> None:
    rule = parse("trait d before 2024-03-01")
    assert isinstance(rule, TraitDateCondition)
    assert rule.date == datetime(2024, 3, 1, tzinfo=UTC)


def test_parse_located_gives_the_position_of_each_node_and_field() -> None:
    parsed = parse_located('trait country = "FR" and\n  event "Order Completed" where x = 1')
    assert parsed.span(()) is not None
    trait = parsed.span((0,), "trait")
    assert trait is not None
    assert (trait.line, trait.column) == (1, 7)
    event = parsed.span((1,), "event")
    assert event is not None
    assert (event.line, event.column, event.end_column) == (2, 9, 26)
    prop = parsed.span((1,), "filters[0].property")
    assert prop is not None
    assert (prop.line, prop.column) == (2, 33)


def test_property_tests_alone_parse_for_event_triggers() -> None:
    assert parse_filters('currency = "EUR" and revenue > 50') == (
        PropertyFilter("currency", Operator.EQ, "EUR"),
        PropertyFilter("revenue", Operator.GT, D(50)),
    )


def test_property_tests_alone_print_back_and_match_like_a_where() -> None:
    filters = parse_filters('coupon exists and total >= 10.5 and tag in ["a", "b"]')
    assert parse_filters(filters_text(filters)) == filters
    assert filters_match({"coupon": "X", "total": 11, "tag": "a"}, filters)
    assert not filters_match({"total": 11, "tag": "a"}, filters)
