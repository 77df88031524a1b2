"""Shopify's customers, orders and checkouts, read from either of the shapes Shopify sends.

Webhooks carry the REST resource (`{"id": 450789469, "total_price": "598.94", ...}`);
the Admin GraphQL API returns nodes (`{"id": "gid://shopify/Order/450789469",
"totalPriceSet": {"shopMoney": {"amount": "598.94", ...}}}`). Both are read into the same
frozen records here, so one mapping (`events.py`) turns them into Mailwright events.
Money is `Decimal`; times are aware UTC datetimes; ids are Shopify's numeric ids as text.
A payload that lacks what a record needs raises `RecordError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class RecordError(ValueError):
    """A Shopify payload that cannot be read; the message names the field."""


def numeric_id(value: object, field: str) -> str:
    """`450789469`, `"450789469"` or `"gid://shopify/Order/450789469"` → `"450789469"`."""
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{field}: missing")
    text = str(value).rsplit("/", 1)[-1].split("?", 1)[0]
    if not text.isdigit() or len(text) > 20:
        raise RecordError(f"{field}: not a Shopify id")
    return text


def optional_id(value: object, field: str) -> str | None:
    return None if value in (None, "") else numeric_id(value, field)


def timestamp(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field}: missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{field}: not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise RecordError(f"{field}: has no time zone")
    return parsed.astimezone(UTC)


def optional_timestamp(value: object, field: str) -> datetime | None:
    return None if value in (None, "") else timestamp(value, field)


def money(value: object, field: str) -> Decimal | None:
    """A decimal amount from `"12.50"` (never a float: Shopify sends strings)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise RecordError(f"{field}: not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RecordError(f"{field}: not an amount") from None
    if not amount.is_finite():
        raise RecordError(f"{field}: not an amount")
    return amount


def shop_money(value: object, field: str) -> Decimal | None:
    """The shop-currency amount of a GraphQL `MoneyBag` (`{"shopMoney": {"amount": …}}`)."""
    if not isinstance(value, Mapping):
        return None
    inner = value.get("shopMoney")
    return money(inner.get("amount"), field) if isinstance(inner, Mapping) else None


def text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def tags(value: object) -> tuple[str, ...]:
    """REST sends `"vip, newsletter"`; GraphQL sends `["vip", "newsletter"]`."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        return ()
    return tuple(t for t in (text(item) for item in items) if t)


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def nodes(value: object) -> list[Mapping[str, Any]]:
    """A GraphQL connection's nodes (`{"nodes": [...]}` or `{"edges": [{"node": …}]}`)."""
    connection = mapping(value)
    if isinstance(connection.get("nodes"), list):
        return [mapping(n) for n in connection["nodes"]]
    if isinstance(connection.get("edges"), list):
        return [mapping(mapping(edge).get("node")) for edge in connection["edges"]]
    return []


@dataclass(frozen=True)
class Address:
    city: str | None = None
    region: str | None = None
    country: str | None = None
    postal_code: str | None = None

    def as_traits(self) -> dict[str, str]:
        values = {
            "city": self.city,
            "state": self.region,
            "country": self.country,
            "postal_code": self.postal_code,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Customer:
    id: str
    updated_at: datetime
    created_at: datetime | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    state: str | None = None
    tags: tuple[str, ...] = ()
    orders_count: int | None = None
    total_spent: Decimal | None = None
    currency: str | None = None
    email_marketing: str | None = None
    address: Address = Address()

    @classmethod
    def from_rest(cls, payload: Mapping[str, Any]) -> Customer:
        consent = mapping(payload.get("email_marketing_consent"))
        address = mapping(payload.get("default_address"))
        count = payload.get("orders_count")
        return cls(
            id=numeric_id(payload.get("id"), "id"),
            updated_at=timestamp(payload.get("updated_at"), "updated_at"),
            created_at=optional_timestamp(payload.get("created_at"), "created_at"),
            email=text(payload.get("email")),
            phone=text(payload.get("phone")),
            first_name=text(payload.get("first_name")),
            last_name=text(payload.get("last_name")),
            locale=text(payload.get("locale")),
            state=text(payload.get("state")),
            tags=tags(payload.get("tags")),
            orders_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            total_spent=money(payload.get("total_spent"), "total_spent"),
            currency=text(payload.get("currency")),
            email_marketing=_lower(text(consent.get("state"))),
            address=Address(
                city=text(address.get("city")),
                region=text(address.get("province_code")),
                country=text(address.get("country_code")),
                postal_code=text(address.get("zip")),
            ),
        )

    @classmethod
    def from_graphql(cls, node: Mapping[str, Any]) -> Customer:
        email = mapping(node.get("defaultEmailAddress"))
        phone = mapping(node.get("defaultPhoneNumber"))
        spent = mapping(node.get("amountSpent"))
        address = mapping(node.get("defaultAddress"))
        count = node.get("numberOfOrders")
        return cls(
            id=numeric_id(node.get("id"), "id"),
            updated_at=timestamp(node.get("updatedAt"), "updatedAt"),
            created_at=optional_timestamp(node.get("createdAt"), "createdAt"),
            email=text(email.get("emailAddress")),
            phone=text(phone.get("phoneNumber")),
            first_name=text(node.get("firstName")),
            last_name=text(node.get("lastName")),
            locale=text(node.get("locale")),
            state=_lower(text(node.get("state"))),
            tags=tags(node.get("tags")),
            # UnsignedInt64 arrives as a string.
            orders_count=int(count) if isinstance(count, str) and count.isdigit() else None,
            total_spent=money(spent.get("amount"), "amountSpent.amount"),
            currency=text(spent.get("currencyCode")),
            email_marketing=_lower(text(email.get("marketingState"))),
            address=Address(
                city=text(address.get("city")),
                region=text(address.get("provinceCode")),
                country=text(address.get("countryCodeV2")),
                postal_code=text(address.get("zip")),
            ),
        )


@dataclass(frozen=True)
class EmailConsent:
    """A customer's email marketing consent as `customers_email_marketing_consent/update`
    carries it (since API 2025-01 the only webhook that does): `{"customer_id": 7001,
    "email_address": "ada@example.com", "email_marketing_consent": {"state":
    "unsubscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "…"}}`.

    `state` is Shopify's, lower-cased (`subscribed`, `not_subscribed`, `unsubscribed`,
    `pending`, `redacted`, `invalid`); a state Shopify adds later is kept as it comes.
    """

    customer_id: str
    state: str
    email: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_rest(cls, payload: Mapping[str, Any]) -> EmailConsent:
        customer_id = numeric_id(payload.get("customer_id"), "customer_id")
        consent = payload.get("email_marketing_consent")
        if not isinstance(consent, Mapping):
            raise RecordError("email_marketing_consent: missing")
        state = _lower(text(consent.get("state")))
        if state is None:
            raise RecordError("email_marketing_consent.state: missing")
        return cls(
            customer_id=customer_id,
            state=state,
            email=text(payload.get("email_address")),
            updated_at=optional_timestamp(
                consent.get("consent_updated_at"), "email_marketing_consent.consent_updated_at"
            ),
        )


def _quantity(item: Mapping[str, Any], field: str) -> int:
    quantity = item.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise RecordError(f"{field}.quantity: not a count")
    return quantity


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: int
    price: Decimal
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    category: str | None = None

    @classmethod
    def from_rest(cls, item: Mapping[str, Any], field: str) -> LineItem:
        return cls(
            name=text(item.get("name")) or text(item.get("title")) or "",
            quantity=_quantity(item, field),
            price=money(item.get("price"), f"{field}.price") or Decimal(0),
            product_id=optional_id(item.get("product_id"), f"{field}.product_id"),
            variant_id=optional_id(item.get("variant_id"), f"{field}.variant_id"),
            sku=text(item.get("sku")),
            category=text(item.get("product_type")),
        )

    @classmethod
    def from_graphql(cls, node: Mapping[str, Any], field: str) -> LineItem:
        product = mapping(node.get("product"))
        variant = mapping(node.get("variant"))
        return cls(
            name=text(node.get("name")) or text(node.get("title")) or "",
            quantity=_quantity(node, field),
            price=shop_money(node.get("originalUnitPriceSet"), f"{field}.price") or Decimal(0),
            product_id=optional_id(product.get("id"), f"{field}.product.id"),
            variant_id=optional_id(variant.get("id"), f"{field}.variant.id"),
            sku=text(node.get("sku")),
            category=text(product.get("productType")),
        )


@dataclass(frozen=True)
class Order:
    id: str
    updated_at: datetime
    created_at: datetime
    currency: str
    total: Decimal
    name: str | None = None
    processed_at: datetime | None = None
    cancelled_at: datetime | None = None
    email: str | None = None
    phone: str | None = None
    customer: Customer | None = None
    customer_id: str | None = None
    subtotal: Decimal | None = None
    tax: Decimal | None = None
    shipping: Decimal | None = None
    discount: Decimal | None = None
    financial_status: str | None = None
    discount_codes: tuple[str, ...] = ()
    line_items: tuple[LineItem, ...] = ()

    @classmethod
    def from_rest(cls, payload: Mapping[str, Any]) -> Order:
        currency = text(payload.get("currency"))
        total = money(payload.get("total_price"), "total_price")
        if currency is None:
            raise RecordError("currency: missing")
        if total is None:
            raise RecordError("total_price: missing")
        customer_payload = mapping(payload.get("customer"))
        customer = None
        if customer_payload.get("id") is not None and customer_payload.get("updated_at"):
            customer = Customer.from_rest(customer_payload)
        shipping = mapping(mapping(payload.get("total_shipping_price_set")).get("shop_money"))
        items = payload.get("line_items")
        codes = payload.get("discount_codes")
        return cls(
            id=numeric_id(payload.get("id"), "id"),
            updated_at=timestamp(payload.get("updated_at"), "updated_at"),
            created_at=timestamp(payload.get("created_at"), "created_at"),
            processed_at=optional_timestamp(payload.get("processed_at"), "processed_at"),
            cancelled_at=optional_timestamp(payload.get("cancelled_at"), "cancelled_at"),
            currency=currency.upper(),
            total=total,
            name=text(payload.get("name")),
            email=text(payload.get("email")) or text(payload.get("contact_email")),
            phone=text(payload.get("phone")),
            customer=customer,
            customer_id=optional_id(customer_payload.get("id"), "customer.id"),
            subtotal=money(payload.get("subtotal_price"), "subtotal_price"),
            tax=money(payload.get("total_tax"), "total_tax"),
            shipping=money(shipping.get("amount"), "total_shipping_price_set"),
            discount=money(payload.get("total_discounts"), "total_discounts"),
            financial_status=text(payload.get("financial_status")),
            discount_codes=tuple(
                code for code in (text(mapping(c).get("code")) for c in codes or []) if code
            )
            if isinstance(codes, list)
            else (),
            line_items=tuple(
                LineItem.from_rest(mapping(item), f"line_items[{n}]")
                for n, item in enumerate(items if isinstance(items, list) else [])
            ),
        )

    @classmethod
    def from_graphql(cls, node: Mapping[str, Any]) -> Order:
        currency = text(node.get("currencyCode"))
        total = shop_money(node.get("totalPriceSet"), "totalPriceSet")
        if currency is None:
            raise RecordError("currencyCode: missing")
        if total is None:
            raise RecordError("totalPriceSet: missing")
        codes = node.get("discountCodes")
        return cls(
            id=numeric_id(node.get("id"), "id"),
            updated_at=timestamp(node.get("updatedAt"), "updatedAt"),
            created_at=timestamp(node.get("createdAt"), "createdAt"),
            processed_at=optional_timestamp(node.get("processedAt"), "processedAt"),
            cancelled_at=optional_timestamp(node.get("cancelledAt"), "cancelledAt"),
            currency=currency.upper(),
            total=total,
            name=text(node.get("name")),
            email=text(node.get("email")),
            phone=text(node.get("phone")),
            customer_id=optional_id(mapping(node.get("customer")).get("id"), "customer.id"),
            subtotal=shop_money(node.get("subtotalPriceSet"), "subtotalPriceSet"),
            tax=shop_money(node.get("totalTaxSet"), "totalTaxSet"),
            shipping=shop_money(node.get("totalShippingPriceSet"), "totalShippingPriceSet"),
            discount=shop_money(node.get("totalDiscountsSet"), "totalDiscountsSet"),
            financial_status=_lower(text(node.get("displayFinancialStatus"))),
            discount_codes=tags(codes),
            line_items=tuple(
                LineItem.from_graphql(item, f"lineItems[{n}]")
                for n, item in enumerate(nodes(node.get("lineItems")))
            ),
        )


@dataclass(frozen=True)
class Checkout:
    token: str
    updated_at: datetime
    created_at: datetime
    currency: str
    total: Decimal | None = None
    subtotal: Decimal | None = None
    completed_at: datetime | None = None
    email: str | None = None
    phone: str | None = None
    customer: Customer | None = None
    customer_id: str | None = None
    recovery_url: str | None = None
    discount_codes: tuple[str, ...] = ()
    line_items: tuple[LineItem, ...] = ()

    @classmethod
    def from_rest(cls, payload: Mapping[str, Any]) -> Checkout:
        token = text(payload.get("token")) or text(payload.get("id"))
        if token is None or len(token) > 64:
            raise RecordError("token: missing")
        currency = text(payload.get("presentment_currency")) or text(payload.get("currency"))
        if currency is None:
            raise RecordError("currency: missing")
        customer_payload = mapping(payload.get("customer"))
        customer = None
        if customer_payload.get("id") is not None and customer_payload.get("updated_at"):
            customer = Customer.from_rest(customer_payload)
        items = payload.get("line_items")
        codes = payload.get("discount_codes")
        return cls(
            token=token,
            updated_at=timestamp(payload.get("updated_at"), "updated_at"),
            created_at=timestamp(payload.get("created_at"), "created_at"),
            completed_at=optional_timestamp(payload.get("completed_at"), "completed_at"),
            currency=currency.upper(),
            total=money(payload.get("total_price"), "total_price"),
            subtotal=money(payload.get("subtotal_price"), "subtotal_price"),
            email=text(payload.get("email")),
            phone=text(payload.get("phone")),
            customer=customer,
            customer_id=optional_id(customer_payload.get("id"), "customer.id"),
            recovery_url=text(payload.get("abandoned_checkout_url")),
            discount_codes=tuple(
                code for code in (text(mapping(c).get("code")) for c in codes or []) if code
            )
            if isinstance(codes, list)
            else (),
            line_items=tuple(
                LineItem.from_rest(mapping(item), f"line_items[{n}]")
                for n, item in enumerate(items if isinstance(items, list) else [])
            ),
        )


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None
