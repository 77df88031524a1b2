"""The checker reports unknown names, type mismatches, never-true rules and limits; it
refuses cycles through segment references. Nothing is silently false."""

import pytest

from mailwright.rules import (
    Limits,
    RuleCheckError,
    SegmentCycleError,
    Severity,
    Taxonomy,
    TraitSchema,
    check,
    check_cycles,
    check_text,
    parse,
)
from mailwright.rules.check import CheckResult

TAXONOMY = Taxonomy.from_mapping(
    {
        "Order Completed": {"revenue": "money", "currency": "currency", "product_id": "string"},
        "Product Viewed": {"product_id": "string", "price": "number", "sku": "integer"},
        "Product Added": {"product_id": "string", "sku": "string", "at": "timestamp"},
    }
)
TRAITS = TraitSchema.from_mapping(
    {
        "country": "country",
        "age": "integer",
        "vip": "boolean",
        "signup_date": "timestamp",
        "tags": "array",
        "address": "object",
        "clv_12m": "number",
    }
)


def checked(text: str, **kw: object) -> CheckResult:
    options: dict[str, object] = {"taxonomy": TAXONOMY, "traits": TRAITS} | kw
    return check_text(text, **options)[1]  # type: ignore[arg-type]


def only(result: CheckResult) -> tuple[str, str, str]:
    (diagnostic,) = result.diagnostics
    return diagnostic.severity.value, diagnostic.code, diagnostic.message


def test_a_well_typed_rule_passes() -> None:
    result = checked(
        'trait country in ["FR", "DE"] and trait clv_12m > 100 and trait vip = true '
        'and trait tags contains "x" and trait address exists '
        'and sum(revenue) of event "Order Completed" where currency = "EUR" > 10 '
        'and event "Product Viewed" count >= 3 in last 14 days then no "Order Completed" '
        "within 7 days per product_id and trait signup_date within last 30 days"
    )
    assert result.diagnostics == ()
    assert result.ok


def test_an_unknown_trait_is_an_error_with_its_position() -> None:
    result = checked('trait country = "FR" and\n  trait contry = "FR"')
    assert only(result) == ("error", "unknown-trait", 'unknown trait "contry"')
    span = result.diagnostics[0].span
    assert span is not None
    assert (span.line, span.column) == (2, 9)
    assert str(result.diagnostics[0]) == 'line 2, column 9: error: unknown trait "contry"'


def test_an_undeclared_trait_is_a_warning_when_traits_are_open() -> None:
    open_traits = TraitSchema(TRAITS.traits, allow_undeclared=True)
    result = checked('trait favourite_colour = "red"', traits=open_traits)
    assert only(result)[:2] == ("warning", "unknown-trait")
    assert result.ok


def test_an_unknown_event_is_an_error() -> None:
    result = checked('event "Order Complete" count >= 1')
    assert only(result) == ("error", "unknown-event", 'unknown event "Order Complete"')
    assert result.diagnostics[0].span.column == 7  # type: ignore[union-attr]


def test_an_unknown_event_is_a_warning_when_unplanned_events_are_allowed() -> None:
    taxonomy = Taxonomy(TAXONOMY.events, allow_unplanned=True)
    result = checked('did not perform "Wishlist Shared"', taxonomy=taxonomy)
    assert only(result)[:2] == ("warning", "unknown-event")
    assert "unplanned" in result.diagnostics[0].message


def test_an_unknown_property_is_an_error_at_the_property() -> None:
    result = checked('event "Order Completed" where colour = "red"')
    assert only(result) == (
        "error",
        "unknown-property",
        '"Order Completed" has no property "colour" in the taxonomy',
    )
    assert result.diagnostics[0].span.column == 31  # type: ignore[union-attr]


def test_an_unknown_property_in_the_second_step_of_a_sequence_is_found() -> None:
    result = checked(
        'event "Product Viewed" then "Order Completed" where colour = "red" within 1 day'
    )
    assert only(result)[1] == "unknown-property"
    assert result.diagnostics[0].field == "then.filters[0].property"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trait country = 3", 'trait "country" is a string but 3 is a number'),
        ("trait country < 3", 'trait "country" is a string; < compares numbers'),
        ('trait age contains "1"', 'trait "age" is a number; contains applies to strings'),
        ('trait vip = "yes"', 'trait "vip" is a boolean but "yes" is a string'),
        ('trait age in [1, "2"]', 'trait "age" is a number but "2" is a string'),
        ('trait tags = "x"', 'trait "tags" is a list; use contains, exists or not exists'),
        ('trait address = "x"', 'trait "address" is an object; only exists and not exists apply'),
        ('trait signup_date = "2024-01-01"', 'trait "signup_date" is a date; compare dates'),
        ("trait age before 2024-01-01", 'trait "age" is a number; before, after and within'),
        ("trait country within last 3 days", 'trait "country" is a string; before, after'),
        (
            'sum(currency) of event "Order Completed" > 3',
            'sum(currency) needs a number, but property "currency" of "Order Completed" is a',
        ),
        (
            'event "Product Viewed" where price = "cheap"',
            'property "price" of "Product Viewed" is a number but "cheap" is a string',
        ),
        (
            'event "Product Added" where at > 3',
            'property "at" of "Product Added" is a date',
        ),
    ],
)
def test_type_mismatches_are_errors(text: str, message: str) -> None:
    severity, code, found = only(checked(text))
    assert (severity, code) == ("error", "type-mismatch")
    assert found.startswith(message), found


def test_per_needs_the_same_scalar_type_on_both_steps() -> None:
    result = checked('event "Product Viewed" then "Product Added" within 1 day per sku')
    assert only(result)[1] == "type-mismatch"
    assert "different types" in result.diagnostics[0].message
    result = checked('event "Product Added" then "Product Added" within 1 day per at')
    assert "not a date" in only(result)[2]


def test_then_no_with_a_window_not_longer_than_the_wait_is_never_true() -> None:
    result = checked(
        'event "Product Viewed" count > 2 in last 7 days then no "Order Completed" within 7 days'
    )
    assert only(result)[:2] == ("error", "never-true")
    assert "window must be longer than the wait" in result.diagnostics[0].message


def test_more_engaged_emails_than_emails_considered_is_never_true() -> None:
    assert only(checked("opened at least 6 of last 5 emails"))[:2] == ("error", "never-true")


def test_count_below_zero_is_never_true_and_at_least_zero_always_true() -> None:
    assert only(checked('event "Order Completed" count < 0'))[:2] == ("error", "never-true")
    assert only(checked('event "Order Completed" count >= 0'))[:2] == ("warning", "always-true")


def test_an_unknown_segment_is_an_error_when_segments_are_given() -> None:
    result = checked('in segment "vip" or not in segment "gone"', segments={"vip"})
    assert only(result) == ("error", "unknown-segment", 'unknown segment "gone"')


def test_a_rule_too_deep_is_refused_with_the_limit() -> None:
    result = checked("not not not not trait age > 1", limits=Limits(max_depth=4))
    assert only(result) == ("error", "too-deep", "rule is 5 levels deep; the limit is 4")


def test_a_rule_too_wide_is_refused_with_the_limit() -> None:
    text = " or ".join(f"trait age = {i}" for i in range(101))
    assert only(checked(text)) == (
        "error",
        "too-many-conditions",
        "rule has 101 conditions; the limit is 100",
    )


def test_too_many_filters_and_list_values_are_refused() -> None:
    filters = " and ".join(f"price = {i}" for i in range(3))
    result = checked(f'event "Product Viewed" where ({filters})', limits=Limits(max_filters=2))
    assert only(result)[1] == "too-many-filters"
    values = ", ".join(str(i) for i in range(5))
    result = checked(f"trait age in [{values}]", limits=Limits(max_list_values=4))
    assert only(result)[1] == "too-many-values"


def test_without_schemas_only_structure_is_checked() -> None:
    result = check(parse('trait anything = 1 and event "Whatever" where x = 1'))
    assert result.diagnostics == ()


def test_raise_for_errors_raises_with_every_error() -> None:
    result = checked('trait contry = "FR" and event "Nope"')
    with pytest.raises(RuleCheckError) as info:
        result.raise_for_errors()
    assert len(info.value.diagnostics) == 2
    assert all(d.severity is Severity.ERROR for d in info.value.diagnostics)


# -- cycles -------------------------------------------------------------------------------


RULES = {
    "a": parse('in segment "b"'),
    "b": parse('in segment "c" or in segment "d"'),
    "c": parse("trait x = 1"),
    "d": parse('not in segment "a"'),
}


def test_a_cycle_through_segment_references_is_refused_with_its_path() -> None:
    with pytest.raises(SegmentCycleError) as info:
        check_cycles("a", RULES.get)
    assert info.value.cycle == ("a", "b", "d", "a")
    assert str(info.value) == 'segment references form a cycle: "a" -> "b" -> "d" -> "a"'


def test_a_new_rule_closing_a_cycle_is_refused() -> None:
    check_cycles("c", RULES.get)
    with pytest.raises(SegmentCycleError) as info:
        check_cycles("c", RULES.get, rule=parse('in segment "a"'))
    assert info.value.cycle[0] == info.value.cycle[-1]


def test_a_segment_referring_to_itself_is_a_cycle() -> None:
    with pytest.raises(SegmentCycleError) as info:
        check_cycles("x", lambda _: None, rule=parse('not in segment "x"'))
    assert info.value.cycle == ("x", "x")


def test_shared_references_without_a_loop_are_fine() -> None:
    rules = {"top": parse('in segment "l" and in segment "r"'), "l": parse('in segment "base"'),
             "r": parse('in segment "base"'), "base": parse("trait x = 1")}  # fmt: skip
    check_cycles("top", rules.get)
