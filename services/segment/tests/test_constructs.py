"""Each construct of the language, by example: the compiled SQL (on SQLite and PostgreSQL)
and the incremental evaluator give the expected answer, at window edges included.

The expected answers are written by hand; the reference evaluator is asked too, so an
example that misreads the language fails loudly instead of testing the wrong thing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from agreement import seed, verdicts

from mailwright.rules import parse
from mailwright.rules.person import EmailSend, Event, Person

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def order(at: datetime, revenue: object, currency: str) -> Event:
    return Event("Order Completed", at, {"revenue": revenue, "currency": currency})


ALICE = Person(
    traits={
        "country": "FR",
        "plan": "pro",
        "clv_12m": Decimal("150.5"),
        "tags": ["vip", "beta"],
        "signup_date": "2024-03-01T00:00:00+00:00",
        "vip": True,
        "score": 0.1,
    },
    events=(
        order(T0 - 10 * DAY, Decimal("100.10"), "EUR"),
        order(T0 - 2 * DAY, 0.2, "EUR"),
        order(T0 - DAY, "n/a", "USD"),
        Event("Product Viewed", T0 - 3 * DAY, {"product_id": "p1"}),
        Event("Product Viewed", T0 - 2 * DAY, {"product_id": "p1"}),
        Event("Product Viewed", T0 - DAY, {"product_id": "p1"}),
        Event("Product Added", T0 - DAY + HOUR, {"product_id": "p2"}),
    ),
    emails=(
        EmailSend("s1", T0 - 5 * DAY, opens=(T0 - 5 * DAY + HOUR,)),
        EmailSend("s2", T0 - 3 * DAY, clicks=(T0 - 2 * DAY,)),
        EmailSend("s3", T0 - DAY, machine_opens=(T0 - DAY + HOUR,)),
    ),
    segments=frozenset({"vip"}),
)
NOBODY = Person()

Case = tuple[str, datetime, bool]

TRAITS: list[Case] = [
    ('trait country = "FR"', T0, True),
    ('trait country != "FR"', T0, False),
    ('trait missing != "x"', T0, False),
    ('not trait missing = "x"', T0, True),
    ("trait clv_12m > 150.4", T0, True),
    ("trait clv_12m >= 150.5", T0, True),
    ("trait clv_12m < 150.5", T0, False),
    ("trait score = 0.1", T0, True),
    ('trait plan in ["pro", "team"]', T0, True),
    ('trait plan not in ["free"]', T0, True),
    ('trait tags contains "vip"', T0, True),
    ('trait tags contains "VIP"', T0, False),
    ('trait country contains "R"', T0, True),
    ('trait country starts with "F"', T0, True),
    ('trait country starts with "f"', T0, False),
    ("trait phone exists", T0, False),
    ("trait phone not exists", T0, True),
    ("trait vip = true", T0, True),
    ("trait vip = 1", T0, False),
    ('trait clv_12m = "150.5"', T0, False),
]

DATES: list[Case] = [
    ("trait signup_date before 2024-03-02", T0, True),
    ("trait signup_date after 2024-03-01", T0, False),
    ("trait signup_date within last 9 days", T0, False),
    ("trait signup_date within last 10 days", T0, True),
    ("trait signup_date not within last 9 days", T0, True),
    ("trait signup_date within last 13680 minutes", T0, False),
    ("trait signup_date within last 13680 minutes", T0 - TICK, True),
    ("trait country within last 9 days", T0, False),
    ("trait missing not within last 9 days", T0, False),
]

EVENTS: list[Case] = [
    ('event "Order Completed" count >= 3', T0, True),
    ('event "Order Completed" count >= 2 in last 2 days', T0, False),
    ('event "Order Completed" count >= 2 in last 2 days', T0 - TICK, True),
    ('event "Order Completed" where currency = "EUR" count = 2', T0, True),
    ('event "Order Completed" where (currency = "EUR" and revenue > 1) count = 1', T0, True),
    ('did not perform "Order Completed" in last 12 hours', T0, True),
    ('did not perform "Order Completed" in last 1 day', T0 - TICK, False),
    ('event "Order Completed" between 2024-03-08 and 2024-03-09', T0, True),
    ('event "Order Completed" between 2024-03-08 and 2024-03-09', T0 - 2 * DAY - HOUR, False),
    ('event "Product Viewed" count = 3 in last 5 days', T0, True),
    ('event "Product Viewed" count = 2 in last 3 days', T0, True),
    ('event "Product Viewed" count = 3 in last 3 days', T0 - TICK, True),
    ('event "Product Viewed" count < 1 in last 12 hours', T0, True),
]

AGGREGATES: list[Case] = [
    ('sum(revenue) of event "Order Completed" = 100.30', T0, True),
    ('sum(revenue) of event "Order Completed" > 100.3', T0, False),
    ('avg(revenue) of event "Order Completed" = 50.15', T0, True),
    ('min(revenue) of event "Order Completed" where currency = "USD" > 0', T0, False),
    ('sum(revenue) of event "Order Completed" where currency = "USD" < 1', T0, True),
    ('max(revenue) of event "Order Completed" in last 3 days = 0.2', T0, True),
    ('min(revenue) of event "Order Completed" <= 0.2', T0, True),
    ('avg(revenue) of event "Order Completed" in last 3 days >= 0.2', T0, True),
]

SEQUENCES: list[Case] = [
    ('event "Product Viewed" then "Product Added" within 1 day', T0, True),
    ('event "Product Viewed" then "Product Added" within 1 day per product_id', T0, False),
    ('event "Product Viewed" then "Product Added" within 59 minutes', T0, False),
    (
        'event "Product Viewed" count > 2 in last 7 days then no "Order Completed" within 12 hours',
        T0,
        True,
    ),
    (
        'event "Product Viewed" count > 2 in last 7 days then no "Order Completed" within 12 hours',
        T0 - 13 * HOUR,
        False,
    ),
    (
        'event "Product Viewed" count > 2 in last 7 days then no "Order Completed" within 12 hours',
        T0 - 12 * HOUR,
        True,
    ),
    ('event "Product Viewed" in last 2 days then "Order Completed" within 1 day', T0, False),
    ('event "Product Viewed" then "Order Completed" within 1 day', T0, True),
]

EMAILS: list[Case] = [
    ("opened any of last 1 emails", T0, False),
    ("opened any of last 3 emails", T0, True),
    ("clicked at least 1 of last 2 emails", T0, True),
    ("clicked at least 1 of last 2 emails", T0 - 2 * DAY - TICK, False),
    ("opened or clicked at least 2 emails in last 6 days", T0, True),
    ("opened or clicked at least 2 emails in last 5 days", T0, True),
    ("opened or clicked at least 2 emails in last 4 days", T0, False),
    ("opened an email in last 1 day", T0, False),
    ("opened or clicked any email between 2024-03-05 and 2024-03-06", T0, True),
]

SEGMENTS: list[Case] = [
    ('in segment "vip"', T0, True),
    ('not in segment "vip"', T0, False),
    ('in segment "inactive"', T0, False),
    ('not (trait country = "FR" or in segment "vip")', T0, False),
    ('trait country = "FR" and not in segment "inactive"', T0, True),
]


def check(engine: sa.Engine, cases: list[Case]) -> None:
    failures = []
    for text, now, expected in cases:
        rule = parse(text)
        ws = f"w{uuid.uuid4().hex[:12]}"
        people = [ALICE, NOBODY]
        keys = seed(engine, ws, people, rule)
        (alice, nobody) = verdicts(engine, ws, people, keys, rule, now)
        reference, batch, incremental = alice
        if (reference, batch, incremental) != (expected, expected, expected):
            failures.append(
                f"{text} at {now:%m-%dT%H:%M}: expected {expected}, reference {reference}, "
                f"batch {batch}, incremental {incremental}"
            )
        if len(set(nobody)) != 1:
            failures.append(f"{text}: nobody gets reference/batch/incremental {nobody}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "cases",
    [TRAITS, DATES, EVENTS, AGGREGATES, SEQUENCES, EMAILS, SEGMENTS],
    ids=["traits", "dates", "events", "aggregates", "sequences", "emails", "segments"],
)
def test_each_construct_means_what_the_language_says(engine: sa.Engine, cases: list[Case]) -> None:
    check(engine, cases)
