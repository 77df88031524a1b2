"""The taxonomy file format: the default taxonomy loads, mistakes name their field."""

import pytest

from mailwright.taxonomy import (
    EventFamily,
    PropertyType,
    TaxonomyError,
    default_taxonomy,
    load_taxonomy,
)


def test_the_default_taxonomy_plans_the_e_commerce_and_email_events() -> None:
    document = default_taxonomy()
    names = {spec.event for spec in document.events}
    assert {
        "Product Viewed",
        "Product Added",
        "Checkout Started",
        "Order Completed",
        "Email Opened",
        "Email Link Clicked",
        "Email Bounced",
        "Unsubscribed",
        "Page Viewed",
        "Form Submitted",
    } <= names


def test_order_completed_has_required_ids_money_and_a_product_array() -> None:
    order = default_taxonomy().event("Order Completed")
    assert order is not None
    assert order.family is EventFamily.COMMERCE
    assert "repeat buyer" in order.tags
    order_id = order.property("order_id")
    assert order_id is not None
    assert order_id.required
    revenue = order.property("revenue")
    assert revenue is not None
    assert revenue.type is PropertyType.MONEY
    products = order.property("products")
    assert products is not None
    assert products.type is PropertyType.ARRAY
    assert {item.name for item in products.items} >= {"product_id", "price", "quantity"}


def test_email_events_are_in_the_email_family() -> None:
    for spec in default_taxonomy().events:
        if spec.event.startswith("Email ") or spec.event == "Unsubscribed":
            assert spec.family is EventFamily.EMAIL, spec.event


def test_short_and_long_property_forms_mean_the_same() -> None:
    document = load_taxonomy(
        "events:\n"
        "  Signed Up:\n"
        "    properties:\n"
        "      method: string\n"
        "      plan: {type: string, required: true, enum: [free, pro]}\n"
    )
    spec = document.events[0]
    assert spec.family is EventFamily.TRACK
    assert [(p.name, p.type, p.required, p.enum_values) for p in spec.properties] == [
        ("method", PropertyType.STRING, False, ()),
        ("plan", PropertyType.STRING, True, ("free", "pro")),
    ]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("events:\n  A:\n    properties:\n      x: colour\n", "events['A'].properties.x"),
        (
            "events:\n  A:\n    properties:\n      x: {type: money, items: {}}\n",
            "events['A'].properties.x.items",
        ),
        ("events:\n  A:\n    family: sms\n", "events['A'].family"),
        ("events:\n  A:\n    weight: heavy\n", "events['A'].weight"),
        ("events:\n  A:\n    tags: cart\n", "events['A'].tags"),
        ("events:\n  A:\n    colour: red\n", "events['A']"),
        ("events:\n  ' A':\n", "events"),
        ("version: 2\nevents: {}\n", "version"),
        ("events: [a]\n", "events"),
        ("traits:\n  email: mail\n", "traits.email"),
    ],
)
def test_mistakes_name_their_field(text: str, field: str) -> None:
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(text)
    assert info.value.field == field


def test_items_may_not_nest_without_end() -> None:
    nested = "events:\n  A:\n    properties:\n      a:\n        type: array\n        items:\n"
    nested += "          b:\n            type: array\n            items:\n"
    nested += "              c:\n                type: array\n                items:\n"
    nested += "                  d: string\n"
    with pytest.raises(TaxonomyError, match="nested deeper"):
        load_taxonomy(nested)


def test_a_file_that_is_not_yaml_is_refused() -> None:
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_taxonomy("events: [")
