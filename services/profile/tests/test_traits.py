"""Plain traits: last write wins by source priority, then event time, in any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_profile.identity import MergePolicy
from mailwright_profile.traits import TraitBook, TraitWrite, sortable_time

BASE = datetime(2025, 1, 1, tzinfo=UTC)

writes = st.lists(
    st.builds(
        TraitWrite,
        key=st.sampled_from(["plan", "city", "first_name"]),
        value=st.one_of(st.none(), st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
        # few distinct times, so that ties happen
        time=st.integers(0, 4).map(lambda h: BASE + timedelta(hours=h)),
        source=st.sampled_from(["http", "salesforce", "shopify"]),
    ),
    max_size=12,
)
policies = st.sampled_from(
    [
        MergePolicy(),
        MergePolicy(source_priority=("salesforce",)),
        MergePolicy(source_priority=("shopify", "http")),
    ]
)


def book_of(items: list[TraitWrite], policy: MergePolicy) -> TraitBook:
    book = TraitBook()
    for item in items:
        book.write(item, policy)
    return book


@settings(max_examples=150, deadline=None)
@given(items=writes, policy=policies, data=st.data())
def test_any_order_of_the_same_writes_gives_the_same_traits(
    items: list[TraitWrite], policy: MergePolicy, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(items))
    first, second = book_of(items, policy), book_of(shuffled, policy)
    assert (first.values, first.meta) == (second.values, second.meta)


@settings(max_examples=150, deadline=None)
@given(items=writes, policy=policies, cut=st.integers(0, 12))
def test_merging_two_books_is_writing_everything_into_one(
    items: list[TraitWrite], policy: MergePolicy, cut: int
) -> None:
    whole = book_of(items, policy)
    left, right = book_of(items[:cut], policy), book_of(items[cut:], policy)
    left.merge(right, policy)
    assert (left.values, left.meta) == (whole.values, whole.meta)


def test_a_late_older_write_does_not_overwrite() -> None:
    book = TraitBook()
    policy = MergePolicy()
    assert book.write(TraitWrite("plan", "pro", BASE + timedelta(days=1), "http"), policy)
    assert not book.write(TraitWrite("plan", "free", BASE, "http"), policy)
    assert book.values == {"plan": "pro"}


def test_a_removal_is_remembered_against_older_writes() -> None:
    book = TraitBook()
    policy = MergePolicy()
    book.write(TraitWrite("plan", "pro", BASE, "http"), policy)
    assert book.write(TraitWrite("plan", None, BASE + timedelta(hours=2), "http"), policy)
    assert not book.write(TraitWrite("plan", "free", BASE + timedelta(hours=1), "http"), policy)
    assert "plan" not in book.values


def test_a_listed_source_is_not_overwritten_by_an_unlisted_one() -> None:
    book = TraitBook()
    policy = MergePolicy(source_priority=("salesforce",))
    book.write(TraitWrite("first_name", "Robert", BASE, "salesforce"), policy)
    book.write(TraitWrite("first_name", "Bob", BASE + timedelta(days=3), "http"), policy)
    assert book.values["first_name"] == "Robert"
    book.write(TraitWrite("first_name", "Rob", BASE + timedelta(days=4), "salesforce"), policy)
    assert book.values["first_name"] == "Rob"


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_sortable_time_is_utc_isoformat_with_microseconds(moment: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"
    assert sortable_time(moment) == expected
