"""Shopify records as Mailwright events, in the Segment e-commerce spec's words.

| record | event | message id (stable, so repeats deduplicate) |
|---|---|---|
| customer | identify with traits | `shopify:customer:<id>:<updated_at>` |
| order | track `Order Completed` | `shopify:order:<id>:completed` (once per order) |
| cancelled order | track `Order Cancelled` | `shopify:order:<id>:cancelled` |
| checkout not completed | track `Checkout Started` | `shopify:checkout:<token>:<updated_at>` |
| email consent | identify, `email_consent` | `shopify:customer:<id>:email_consent:<when>:<state>` |

A person is `anonymous_id = shopify:customer:<id>` (or `shopify:checkout:<token>`,
`shopify:order:<id>` for guests) with the identities `shopify:customer`, `email` and
`phone`, which the profile service links. Amounts are decimal strings beside `currency`.

Email consent reaches the profile service as its `email_consent` trait (see
`CONSENT_BY_STATE`); `email_marketing` keeps Shopify's own state, whatever it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event
from mailwright_shopify.records import Checkout, Customer, EmailConsent, LineItem, Order

SOURCE = "shopify"
CUSTOMER_IDENTITY = "shopify:customer"
# Shopify's email marketing states that state a consent, in the words of the profile
# service's `email_consent` trait. The others state none, so they change no consent:
# `not_subscribed` is the state of a customer who never subscribed (Shopify marks an
# opt-out `unsubscribed`), and reading it as an unsubscribe would withdraw a consent given
# elsewhere (a Mailwright form, another connector); `redacted` follows an erasure, which
# reaches Mailwright as its own request; `invalid` is an address Shopify cannot use, which
# delivery's bounces and suppressions deal with.
# A consent stated as of longer before its delivery than this is history (`email_consent`).
HISTORY_AFTER = timedelta(hours=1)
CONSENT_BY_STATE = {
    "subscribed": "subscribed",
    "pending": "pending",
    "unsubscribed": "unsubscribed",
}


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in values.items() if v is not None and v != ()})
    return struct


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _identities(customer_id: str | None, email: str | None, phone: str | None) -> list[Identity]:
    found = []
    if customer_id:
        found.append(Identity(type=CUSTOMER_IDENTITY, value=customer_id))
    if email:
        found.append(Identity(type="email", value=email.strip().lower()))
    if phone:
        found.append(Identity(type="phone", value=phone))
    return found


def _products(items: Iterable[LineItem]) -> list[dict[str, Any]]:
    products = []
    for item in items:
        product = {
            "product_id": item.product_id,
            "variant": item.variant_id,
            "sku": item.sku,
            "name": item.name,
            "price": _amount(item.price),
            "quantity": item.quantity,
            "category": item.category,
        }
        products.append({k: v for k, v in product.items() if v is not None})
    return products


def identify(customer: Customer) -> Event:
    """The identify event of a customer as of its `updated_at`."""
    traits: dict[str, Any] = {
        "email": customer.email.strip().lower() if customer.email else None,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "created_at": customer.created_at.isoformat() if customer.created_at else None,
        "locale": customer.locale,
        "shopify_state": customer.state,
        "tags": list(customer.tags) or None,
        "orders_count": customer.orders_count,
        "total_spent": _amount(customer.total_spent),
        "currency": customer.currency,
        "email_marketing": customer.email_marketing,
        "address": customer.address.as_traits() or None,
    }
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=f"shopify:customer:{customer.id}:{customer.updated_at.isoformat()}",
        anonymous_id=f"shopify:customer:{customer.id}",
        identities=_identities(customer.id, customer.email, customer.phone),
        timestamp=_stamp(customer.updated_at),
        traits=_struct(traits),
        source=SOURCE,
    )


def email_consent(consent: EmailConsent, delivered_at: datetime, delivery_id: str) -> Event:
    """The identify event of a customer's email marketing consent, as of its
    `consent_updated_at` (else of the delivery: `delivered_at`, and the delivery's id in the
    message id, so that a retry of it is still the same event).

    A consent stated as of more than an hour before the delivery (an app importing
    customers with the dates of their consents) is marked `backfill`: ingest takes it as
    history, however old, where a live event older than the workspace's `max_past` (an
    hour at the least) would be refused, and an unsubscribe lost."""
    if consent.updated_at is not None:
        when, version = consent.updated_at, consent.updated_at.isoformat()
    else:
        when, version = delivered_at, f"delivery:{delivery_id}"
    backfill = when < delivered_at - HISTORY_AFTER
    traits: dict[str, Any] = {
        "email": consent.email.strip().lower() if consent.email else None,
        "email_marketing": consent.state,
        "email_consent": CONSENT_BY_STATE.get(consent.state),
    }
    customer_id = consent.customer_id
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=f"shopify:customer:{customer_id}:email_consent:{version}:{consent.state}"[:255],
        anonymous_id=f"shopify:customer:{customer_id}",
        identities=_identities(customer_id, consent.email, None),
        timestamp=_stamp(when),
        traits=_struct(traits),
        source=SOURCE,
        backfill=backfill,
    )


def _order_properties(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "order_name": order.name,
        "total": _amount(order.total),
        "revenue": _amount(order.subtotal if order.subtotal is not None else order.total),
        "subtotal": _amount(order.subtotal),
        "tax": _amount(order.tax),
        "shipping": _amount(order.shipping),
        "discount": _amount(order.discount),
        "coupon": order.discount_codes[0] if order.discount_codes else None,
        "currency": order.currency,
        "financial_status": order.financial_status,
        "products": _products(order.line_items),
    }


def _order_person(order: Order) -> tuple[str, list[Identity]]:
    customer_id = order.customer_id or (order.customer.id if order.customer else None)
    email = order.email or (order.customer.email if order.customer else None)
    phone = order.phone or (order.customer.phone if order.customer else None)
    anonymous = f"shopify:customer:{customer_id}" if customer_id else f"shopify:order:{order.id}"
    return anonymous, _identities(customer_id, email, phone)


def order_events(order: Order) -> list[Event]:
    """`Order Completed` for every order, and `Order Cancelled` once it is cancelled."""
    anonymous, identities = _order_person(order)
    placed = order.processed_at or order.created_at
    events = [
        Event(
            type=EVENT_TYPE_TRACK,
            event="Order Completed",
            message_id=f"shopify:order:{order.id}:completed",
            anonymous_id=anonymous,
            identities=identities,
            timestamp=_stamp(placed),
            properties=_struct(_order_properties(order)),
            source=SOURCE,
        )
    ]
    if order.cancelled_at is not None:
        events.append(
            Event(
                type=EVENT_TYPE_TRACK,
                event="Order Cancelled",
                message_id=f"shopify:order:{order.id}:cancelled",
                anonymous_id=anonymous,
                identities=identities,
                timestamp=_stamp(order.cancelled_at),
                properties=_struct(_order_properties(order)),
                source=SOURCE,
            )
        )
    return events


def checkout_events(checkout: Checkout) -> list[Event]:
    """`Checkout Started` for an open checkout, as of its latest update (none once it is
    completed: the order's own event says so)."""
    if checkout.completed_at is not None:
        return []
    customer_id = checkout.customer_id or (checkout.customer.id if checkout.customer else None)
    email = checkout.email or (checkout.customer.email if checkout.customer else None)
    anonymous = (
        f"shopify:customer:{customer_id}" if customer_id else f"shopify:checkout:{checkout.token}"
    )
    properties = {
        "checkout_id": checkout.token,
        "value": _amount(checkout.subtotal if checkout.subtotal is not None else checkout.total),
        "revenue": _amount(checkout.subtotal),
        "total": _amount(checkout.total),
        "currency": checkout.currency,
        "coupon": checkout.discount_codes[0] if checkout.discount_codes else None,
        "checkout_url": checkout.recovery_url,
        "products": _products(checkout.line_items),
    }
    return [
        Event(
            type=EVENT_TYPE_TRACK,
            event="Checkout Started",
            message_id=f"shopify:checkout:{checkout.token}:{checkout.updated_at.isoformat()}",
            anonymous_id=anonymous,
            identities=_identities(customer_id, email, checkout.phone),
            timestamp=_stamp(checkout.updated_at),
            properties=_struct(properties),
            source=SOURCE,
        )
    ]
