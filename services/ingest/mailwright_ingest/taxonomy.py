"""A workspace's taxonomy as ingest uses it: names, ids, families, and definitions from
the API checked with the SDK's taxonomy format (`mailwright.taxonomy`).

The event name decides the bus topic: a planned event goes to its definition's family,
an unplanned one to the family its name suggests (`Order Shipped` is commerce, `Email
Forwarded` is email), so consumers of `events.commerce` see every order event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from mailwright.errors import FieldViolation
from mailwright.taxonomy import (
    EventFamily,
    EventSpec,
    PropertySpec,
    TaxonomyError,
    parse_event,
)

MAX_DEFINITION_ID = 128
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_COMMERCE_WORDS = frozenset(
    {"order", "orders", "cart", "checkout", "refund", "refunded", "payment", "coupon", "purchase"}
)
_CART_EVENTS = frozenset({"product added", "product removed"})
_EMAIL_EVENTS = frozenset({"unsubscribed", "subscribed", "resubscribed"})


def definition_id(event: str) -> str:
    """The resource id of an event name: lower kebab case (`Order Completed` →
    `order-completed`); a name with no letter or digit gets a hash."""
    slug = _NOT_ALNUM.sub("-", event.lower()).strip("-")[:MAX_DEFINITION_ID].strip("-")
    if not slug:
        return "event-" + hashlib.sha256(event.encode()).hexdigest()[:16]
    return slug


def infer_family(event: str) -> EventFamily:
    """The family an unplanned event's name suggests."""
    name = event.strip().lower()
    if name.startswith("email ") or name in _EMAIL_EVENTS:
        return EventFamily.EMAIL
    if name in _CART_EVENTS or _COMMERCE_WORDS & set(_NOT_ALNUM.split(name)):
        return EventFamily.COMMERCE
    return EventFamily.TRACK


@dataclass(frozen=True)
class Definition:
    """An event definition as stored: the spec, its id and when it last changed."""

    id: str
    spec: EventSpec
    update_time: datetime


class Taxonomy:
    """The planned events of one workspace, by name."""

    def __init__(self, definitions: Iterable[Definition]) -> None:
        self._by_name: Mapping[str, EventSpec] = MappingProxyType(
            {d.spec.event: d.spec for d in definitions}
        )

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, event: str) -> EventSpec | None:
        return self._by_name.get(event)

    def family(self, event: str) -> EventFamily:
        spec = self._by_name.get(event)
        return spec.family if spec is not None else infer_family(event)


# -- definitions from the API -------------------------------------------------------------


def spec_body(spec: EventSpec) -> dict[str, Any]:
    """The definition as the taxonomy file writes it (what `parse_event` reads back)."""
    body: dict[str, Any] = {"family": spec.family.value}
    if spec.description:
        body["description"] = spec.description
    if spec.tags:
        body["tags"] = list(spec.tags)
    if spec.weight:
        body["weight"] = spec.weight
    if spec.properties:
        body["properties"] = _properties_body(spec.properties)
    return body


def _properties_body(properties: Sequence[PropertySpec]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in properties:
        item: dict[str, Any] = {"type": prop.type.value}
        if prop.required:
            item["required"] = True
        if prop.enum_values:
            item["enum"] = list(prop.enum_values)
        if prop.description:
            item["description"] = prop.description
        if prop.items:
            item["items"] = _properties_body(prop.items)
        out[prop.name] = item
    return out


def check_spec(event: str, body: Mapping[str, Any], field: str) -> EventSpec | FieldViolation:
    """The spec of a definition written as a file body, or the violation naming `field`."""
    try:
        return parse_event(event, body)
    except TaxonomyError as error:
        where = error.field
        prefix = f"events[{event!r}]"
        if where.startswith(prefix):
            where = field + where[len(prefix) :]
        elif where == "events":
            where = f"{field}.event"
        return FieldViolation(where, error.message)


def check_unique(
    specs: Sequence[EventSpec], field: str, positions: Sequence[int] | None = None
) -> list[FieldViolation]:
    """Two definitions of one request with the same event name or id are refused.
    `positions` are the specs' indexes in the request (when some were left out)."""
    problems: list[FieldViolation] = []
    seen: dict[str, str] = {}
    for number, spec in enumerate(specs):
        index = positions[number] if positions is not None else number
        ident = definition_id(spec.event)
        if ident in seen:
            problems.append(
                FieldViolation(
                    f"{field}[{index}].event",
                    f"{spec.event!r} has the id {ident!r} of {seen[ident]!r}, defined before",
                )
            )
        else:
            seen[ident] = spec.event
    return problems
