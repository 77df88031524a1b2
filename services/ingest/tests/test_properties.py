"""Properties checked against an event's definition: types, required, enums, product arrays."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.errors import FieldViolation
from mailwright.taxonomy import PropertySpec, PropertyType, default_taxonomy, load_taxonomy
from mailwright_ingest.properties import check_properties

ORDER = default_taxonomy().event("Order Completed")
assert ORDER is not None


def check(values: dict[str, Any], specs: Any = ORDER.properties, region: str | None = None):  # type: ignore[no-untyped-def]
    problems: list[FieldViolation] = []
    changed = check_properties(values, specs, "event.properties", problems, region)
    return problems, changed


def fields(problems: list[FieldViolation]) -> list[str]:
    return [p.field for p in problems]


def test_a_good_order_passes_and_its_amounts_become_exact_decimal_strings() -> None:
    problems, changed = check({"order_id": "o1", "revenue": 19.99, "currency": "eur"})
    assert problems == []
    assert changed == {"order_id": "o1", "revenue": "19.99", "currency": "EUR"}


def test_nothing_changed_gives_none() -> None:
    problems, changed = check({"order_id": "o1", "revenue": "19.99", "currency": "EUR"})
    assert problems == []
    assert changed is None


def test_a_missing_required_property_is_named() -> None:
    problems, _ = check({"revenue": 10})
    assert fields(problems) == ["event.properties.order_id"]
    assert "required" in problems[0].description


def test_a_null_required_property_counts_as_missing() -> None:
    problems, _ = check({"order_id": None})
    assert fields(problems) == ["event.properties.order_id"]


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"order_id": 42}, "event.properties.order_id", "must be a string, not a number"),
        ({"order_id": "o", "revenue": "12,50"}, "event.properties.revenue", "plain decimal"),
        ({"order_id": "o", "revenue": True}, "event.properties.revenue", "boolean"),
        ({"order_id": "o", "currency": "euro"}, "event.properties.currency", "ISO 4217"),
        ({"order_id": "o", "country": "Atlantis"}, "event.properties.country", "country"),
        ({"order_id": "o", "products": {"a": 1}}, "event.properties.products", "array"),
    ],
)
def test_a_wrong_type_names_the_field_and_says_what_was_expected(
    values: dict[str, Any], field: str, words: str
) -> None:
    problems, _ = check(values)
    assert fields(problems) == [field]
    assert words in problems[0].description


def test_each_product_of_an_order_is_checked_item_by_item() -> None:
    problems, _ = check(
        {
            "order_id": "o1",
            "products": [
                {"product_id": "p1", "price": 5, "quantity": 2.0},
                {"price": "x"},
                "not an object",
            ],
        }
    )
    assert fields(problems) == [
        "event.properties.products[1].product_id",
        "event.properties.products[1].price",
        "event.properties.products[2]",
    ]


def test_normalised_product_items_are_written_back() -> None:
    problems, changed = check(
        {"order_id": "o1", "products": [{"product_id": "p1", "price": 5, "quantity": 2.0}]}
    )
    assert problems == []
    assert changed is not None
    assert changed["products"] == [{"product_id": "p1", "price": "5", "quantity": 2}]


def test_enum_values_are_enforced_after_normalisation() -> None:
    spec = load_taxonomy(
        "events:\n  E:\n    properties:\n"
        "      plan: {type: string, enum: [free, pro]}\n"
        "      depth: {type: integer, enum: ['25', '50']}\n"
    ).events[0]
    assert check({"plan": "pro", "depth": 25.0}, spec.properties)[0] == []
    problems, _ = check({"plan": "gold", "depth": 30}, spec.properties)
    assert fields(problems) == ["event.properties.plan", "event.properties.depth"]
    assert "must be one of free, pro" in problems[0].description


@pytest.mark.parametrize(
    ("kind", "raw", "normal"),
    [
        (PropertyType.TIMESTAMP, 1740830400000, "2025-03-01T12:00:00.000Z"),
        (PropertyType.TIMESTAMP, "2025-03-01T13:00:00+01:00", "2025-03-01T12:00:00.000Z"),
        (PropertyType.EMAIL, "  Ada@Example.COM ", "ada@example.com"),
        (PropertyType.PHONE, "+1 (415) 555-0123", "+14155550123"),
        (PropertyType.COUNTRY, "Deutschland", "DE"),
        (PropertyType.INTEGER, 3.0, 3),
        (PropertyType.URL, " https://shop.example/p/1 ", "https://shop.example/p/1"),
    ],
)
def test_values_are_normalised_by_type(kind: PropertyType, raw: Any, normal: Any) -> None:
    problems, changed = check({"x": raw}, (PropertySpec("x", kind),))
    assert problems == []
    assert changed == {"x": normal}


def test_a_phone_without_a_country_code_is_read_in_the_events_region() -> None:
    spec = (PropertySpec("phone", PropertyType.PHONE),)
    assert check({"phone": "07700 900123"}, spec, region="GB")[1] == {"phone": "+447700900123"}
    problems, _ = check({"phone": "07700 900123"}, spec)
    assert "country code" in problems[0].description


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative", "ftp://x.example/f"])
def test_a_url_must_be_absolute_http(url: str) -> None:
    problems, _ = check({"u": url}, (PropertySpec("u", PropertyType.URL),))
    assert fields(problems) == ["event.properties.u"]


def test_properties_the_definition_does_not_name_pass_through() -> None:
    problems, changed = check({"order_id": "o1", "gift_wrap": {"colour": "red"}})
    assert problems == []
    assert changed is None


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=6))
def test_checking_never_raises_and_only_reports_named_fields(values: dict[str, Any]) -> None:
    problems, _ = check(values)
    assert all(p.field.startswith("event.properties.") for p in problems)
