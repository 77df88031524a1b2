"""Importing a store's customers and orders through the Admin GraphQL API, incrementally.

A pull pages through `customers` or `orders` sorted by `UPDATED_AT`, filtered with
`updated_at:>='<since>'`, following `pageInfo { hasNextPage endCursor }`. Its cursor
(JSON, opaque to the host) holds `since` (the window's start), `after` (the page cursor
inside the window) and `high` (the newest `updated_at` seen). When a pull reaches the
end, its last cursor starts the next run at `high`: the next run sees what changed since,
plus the records updated in that very second again, whose events repeat their message
ids and are deduplicated. After `window_records` records a pull starts a new window at
`high`, because Shopify limits how deep one cursor may page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import ErrorKind, ProviderError, SourceBatch
from mailwright_shopify import events
from mailwright_shopify.admin import AdminApi
from mailwright_shopify.config import ShopifyConfig, customer_query_cost, order_query_cost
from mailwright_shopify.records import Customer, Order, RecordError, nodes

log = logging.getLogger(__name__)

CUSTOMER_FIELDS = """
      id firstName lastName locale state tags createdAt updatedAt numberOfOrders
      amountSpent { amount currencyCode }
      defaultEmailAddress { emailAddress marketingState }
      defaultPhoneNumber { phoneNumber }
      defaultAddress { city provinceCode countryCodeV2 zip }"""

ORDER_FIELDS = """
      id name email phone createdAt updatedAt processedAt cancelledAt
      displayFinancialStatus currencyCode discountCodes
      customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      totalShippingPriceSet { shopMoney { amount currencyCode } }
      totalDiscountsSet { shopMoney { amount currencyCode } }
      lineItems(first: $lineItems) {
        nodes {
          name sku quantity
          originalUnitPriceSet { shopMoney { amount currencyCode } }
          product { id productType }
          variant { id }
        }
      }"""


def page_query(root: str, fields: str, extra: str = "") -> str:
    name = root[0].upper() + root[1:]
    return (
        f"query {name}($first: Int!, $after: String, $query: String{extra}) {{\n"
        f"  {root}(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{\n"
        f"    nodes {{{fields}\n    }}\n"
        "    pageInfo { hasNextPage endCursor }\n"
        "  }\n"
        "}\n"
    )


def count_query(root: str) -> str:
    return f"query Count($query: String) {{ {root}Count(query: $query) {{ count precision }} }}"


@dataclass(frozen=True)
class Stream:
    root: str
    query: str
    cost: Callable[[ShopifyConfig], int]
    page_size: Callable[[ShopifyConfig], int]
    to_events: Callable[[Mapping[str, Any]], list[Event]]
    extra_variables: Callable[[ShopifyConfig], dict[str, Any]]


STREAMS: dict[str, Stream] = {
    "customers": Stream(
        root="customers",
        query=page_query("customers", CUSTOMER_FIELDS),
        cost=lambda c: customer_query_cost(c.customers_page_size),
        page_size=lambda c: c.customers_page_size,
        to_events=lambda node: [events.identify(Customer.from_graphql(node))],
        extra_variables=lambda c: {},
    ),
    "orders": Stream(
        root="orders",
        query=page_query("orders", ORDER_FIELDS, ", $lineItems: Int!"),
        cost=lambda c: order_query_cost(c.orders_page_size, c.order_line_items),
        page_size=lambda c: c.orders_page_size,
        to_events=lambda node: events.order_events(Order.from_graphql(node)),
        extra_variables=lambda c: {"lineItems": c.order_line_items},
    ),
}


@dataclass(frozen=True)
class Position:
    """Where a pull is: the window's start, the page cursor inside it, the newest seen."""

    since: str | None = None
    after: str | None = None
    high: str | None = None
    paged: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> Position:
        if cursor is None:
            return cls()
        try:
            raw = json.loads(cursor)
            position = cls(
                since=_optional_str(raw.get("since")),
                after=_optional_str(raw.get("after")),
                high=_optional_str(raw.get("high")),
                paged=int(raw.get("paged", 0)),
            )
            for stamp in (position.since, position.high):
                if stamp is not None:
                    datetime.fromisoformat(stamp)
        except (ValueError, TypeError, AttributeError):
            raise ValueError("cursor: not a Shopify cursor written by this connector") from None
        return position

    def dump(self) -> str:
        values = {"since": self.since, "after": self.after, "high": self.high}
        if self.paged:
            values["paged"] = self.paged  # type: ignore[assignment]
        return json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True)

    def search(self) -> str | None:
        return f"updated_at:>='{self.since}'" if self.since else None


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _newest(stamps: Sequence[str | None]) -> str | None:
    """The latest of `stamps` in Shopify's form (`…Z`); unreadable ones are ignored."""
    found = []
    for stamp in stamps:
        try:
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            continue
        if when.tzinfo is not None:
            found.append(when)
    return max(found).astimezone(UTC).isoformat().replace("+00:00", "Z") if found else None


class ShopifySource:
    """The source capability: streams `customers` (identify) and `orders` (Order Completed)."""

    streams: Sequence[str] = tuple(STREAMS)

    def __init__(self, config: ShopifyConfig) -> None:
        self.config = config
        self.admin = AdminApi(config)

    async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; known: {', '.join(STREAMS)}")
        spec = STREAMS[stream]
        position = Position.parse(cursor)
        total = await self._count(spec, position)
        while True:
            variables = {
                "first": spec.page_size(self.config),
                "after": position.after,
                "query": position.search(),
                **spec.extra_variables(self.config),
            }
            data = await self.admin.query(spec.query, variables, spec.cost(self.config))
            connection = data.get(spec.root)
            if not isinstance(connection, Mapping):
                raise ProviderError(ErrorKind.TRANSIENT, f"shopify answered without {spec.root}")
            page = nodes(connection)
            batch: list[Event] = []
            skipped: list[str] = []
            for node in page:
                self._read(spec, node, batch, skipped)
            stamps = [node.get("updatedAt") for node in page]
            high = _newest([position.high, *[s for s in stamps if isinstance(s, str)]])
            info = connection.get("pageInfo")
            more = isinstance(info, Mapping) and info.get("hasNextPage") is True
            end = info.get("endCursor") if isinstance(info, Mapping) else None
            if more and isinstance(end, str):
                position = self._next(position, end, high, len(page))
                yield SourceBatch(stream, tuple(batch), position.dump(), total, tuple(skipped))
                continue
            # The end: the next run starts where the newest record of this one was.
            final = Position(since=high or position.since)
            yield SourceBatch(stream, tuple(batch), final.dump(), total, tuple(skipped))
            return

    def _next(self, position: Position, end: str, high: str | None, count: int) -> Position:
        paged = position.paged + count
        if paged >= self.config.window_records and high and high != position.since:
            log.info("shopify: %d records in this window; starting a new one", paged)
            return Position(since=high, high=high)
        return Position(since=position.since, after=end, high=high, paged=paged)

    def _read(
        self, spec: Stream, node: Mapping[str, Any], events: list[Event], skipped: list[str]
    ) -> None:
        """Add `node`'s events to `events`; or, unreadable, say where and why in `skipped`:
        one bad record must not stop an import, nor vanish from it unreported."""
        try:
            events.extend(spec.to_events(node))
        except RecordError as error:
            log.warning("shopify %s %s skipped: %s", spec.root, node.get("id"), error)
            skipped.append(f"{spec.root.removesuffix('s')} {node.get('id')}: {error}")

    async def _count(self, spec: Stream, position: Position) -> int | None:
        if position.after is not None:
            return None
        try:
            data = await self.admin.query(count_query(spec.root), {"query": position.search()}, 1)
        except ProviderError as error:
            if error.kind in (ErrorKind.AUTH, ErrorKind.RATE_LIMITED):
                raise
            return None
        counted = data.get(f"{spec.root}Count")
        value = counted.get("count") if isinstance(counted, Mapping) else None
        return value if isinstance(value, int) else None

    async def aclose(self) -> None:
        await self.admin.aclose()
