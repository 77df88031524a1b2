"""Event definition ids, families of unplanned names, definitions from the API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.errors import FieldViolation
from mailwright.names import RESOURCE_ID
from mailwright.taxonomy import EventFamily, EventSpec
from mailwright_ingest.taxonomy import check_spec, check_unique, definition_id, infer_family


@pytest.mark.parametrize(
    ("event", "ident"),
    [
        ("Order Completed", "order-completed"),
        ("Email Link Clicked", "email-link-clicked"),
        ("  Product (v2) Viewed!", "product-v2-viewed"),
        ("Überweisung", "berweisung"),
    ],
)
def test_definition_ids_are_lower_kebab_case(event: str, ident: str) -> None:
    assert definition_id(event) == ident


@given(st.text(min_size=1, max_size=300))
def test_every_event_name_has_a_valid_resource_id(event: str) -> None:
    assert RESOURCE_ID.match(definition_id(event))


@pytest.mark.parametrize(
    ("event", "family"),
    [
        ("Order Shipped", EventFamily.COMMERCE),
        ("Cart Shared", EventFamily.COMMERCE),
        ("Product Added", EventFamily.COMMERCE),
        ("Email Forwarded", EventFamily.EMAIL),
        ("Unsubscribed", EventFamily.EMAIL),
        ("Product Viewed", EventFamily.TRACK),
        ("Ordered List Viewed", EventFamily.TRACK),
    ],
)
def test_unplanned_names_get_the_family_they_suggest(event: str, family: EventFamily) -> None:
    assert infer_family(event) is family


def test_a_definition_body_is_checked_with_the_file_format_and_named_by_api_field() -> None:
    checked = check_spec("Signed Up", {"properties": {"plan": {"type": "colour"}}}, "definition")
    assert isinstance(checked, FieldViolation)
    assert checked.field == "definition.properties.plan.type"


def test_an_empty_event_name_is_named() -> None:
    checked = check_spec("", {}, "definitions[2]")
    assert isinstance(checked, FieldViolation)
    assert checked.field == "definitions[2].event"


def test_two_definitions_with_one_id_are_refused() -> None:
    problems = check_unique(
        [EventSpec("Order Completed"), EventSpec("order completed")], "definitions"
    )
    assert [p.field for p in problems] == ["definitions[1].event"]
