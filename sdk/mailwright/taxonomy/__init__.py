"""The event taxonomy file: which events a workspace plans, their properties, tags, weights.

One format, read by the ingest service (`mailwright taxonomy apply -f taxonomy.yaml`,
and the default taxonomy every new workspace starts with) and by the segment rule
checker (which event names and properties a rule may use). The default e-commerce and
email taxonomy, `default.yaml` beside this module, is the one copy both read.

    version: 1
    events:
      Order Completed:
        family: commerce            # track (default), commerce or email: the bus topic
        description: A customer paid for an order.
        tags: [purchase, repeat buyer]
        weight: 10                  # importance for engagement scoring
        properties:
          order_id: {type: string, required: true}
          revenue: money            # short form: just the type
          currency: {type: currency, required: true}
          status: {type: string, enum: [paid, pending]}
          products:
            type: array
            items:                  # each item is an object with these properties
              product_id: {type: string, required: true}
              price: money
    traits:                         # profile traits and their types (for the rule checker)
      email: email

Property types are those of `mailwright.ingest.v1.PropertyType`, written in lower case.
`load_taxonomy` raises `TaxonomyError` naming the field (`events["Order Completed"]
.properties.revenue.type`) for anything it cannot accept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "MAX_EVENTS",
    "MAX_EVENT_NAME_CHARS",
    "MAX_PROPERTIES",
    "SEND_ID_PROPERTIES",
    "EventFamily",
    "EventSpec",
    "PropertySpec",
    "PropertyType",
    "TaxonomyDocument",
    "TaxonomyError",
    "default_taxonomy",
    "load_taxonomy",
    "parse_event",
    "parse_taxonomy",
]

# The properties of an email event that name the email it is about, in order: the
# `send_id` that delivery and the tracking edge write, then the `email_id` of Segment's
# Email spec, which the email providers' sources that follow it send.
SEND_ID_PROPERTIES = ("send_id", "email_id")

MAX_TAXONOMY_CHARS = 2_000_000
MAX_EVENTS = 2000
MAX_EVENT_NAME_CHARS = 200
MAX_PROPERTIES = 200
MAX_PROPERTY_NAME_CHARS = 255
MAX_ENUM_VALUES = 500
MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_ITEM_DEPTH = 3


class PropertyType(StrEnum):
    """The type of an event property (`mailwright.ingest.v1.PropertyType`, lower case)."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    """ISO 8601 or epoch milliseconds; normalised to UTC ISO 8601."""
    MONEY = "money"
    """A decimal amount; the event's `currency` property gives its ISO 4217 code."""
    CURRENCY = "currency"
    COUNTRY = "country"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    OBJECT = "object"
    ARRAY = "array"


class EventFamily(StrEnum):
    """Which bus topic a track event goes to: `events.track`, `.commerce` or `.email`."""

    TRACK = "track"
    COMMERCE = "commerce"
    EMAIL = "email"


class TaxonomyError(ValueError):
    """A taxonomy is malformed; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class PropertySpec:
    """One property of an event: its type, whether it is required, allowed values, and
    for an array of objects (or an object) the properties of each item."""

    name: str
    type: PropertyType
    required: bool = False
    enum_values: tuple[str, ...] = ()
    description: str = ""
    items: tuple[PropertySpec, ...] = ()


@dataclass(frozen=True)
class EventSpec:
    """One planned event name."""

    event: str
    family: EventFamily = EventFamily.TRACK
    description: str = ""
    properties: tuple[PropertySpec, ...] = ()
    tags: tuple[str, ...] = ()
    weight: float = 0.0

    def property(self, name: str) -> PropertySpec | None:
        for spec in self.properties:
            if spec.name == name:
                return spec
        return None


@dataclass(frozen=True)
class TaxonomyDocument:
    """A taxonomy file: its events in file order, and the trait types it declares."""

    events: tuple[EventSpec, ...]
    traits: Mapping[str, PropertyType] = field(default_factory=lambda: MappingProxyType({}))

    def event(self, name: str) -> EventSpec | None:
        for spec in self.events:
            if spec.event == name:
                return spec
        return None


def load_taxonomy(text: str) -> TaxonomyDocument:
    """The taxonomy of a YAML file; raises TaxonomyError naming the bad field."""
    if len(text) > MAX_TAXONOMY_CHARS:
        raise TaxonomyError("", f"file is larger than {MAX_TAXONOMY_CHARS} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError("", f"not valid YAML: {exc}") from None
    return parse_taxonomy(data)


def parse_taxonomy(data: object) -> TaxonomyDocument:
    """The taxonomy of an already-parsed document (a mapping, as in the YAML file)."""
    if not isinstance(data, Mapping):
        raise TaxonomyError("", "expected a mapping with 'events'")
    unknown = set(data) - {"version", "events", "traits"}
    if unknown:
        raise TaxonomyError("", f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    if data.get("version", 1) != 1:
        raise TaxonomyError("version", "only version 1 is understood")
    events = data.get("events") or {}
    if not isinstance(events, Mapping):
        raise TaxonomyError("events", "expected a mapping of event name to definition")
    if len(events) > MAX_EVENTS:
        raise TaxonomyError("events", f"more than {MAX_EVENTS} events")
    specs = tuple(parse_event(name, body) for name, body in events.items())
    traits_data = data.get("traits") or {}
    if not isinstance(traits_data, Mapping):
        raise TaxonomyError("traits", "expected a mapping of trait key to type")
    traits = {
        _name(key, "traits", MAX_PROPERTY_NAME_CHARS): _type(value, f"traits.{key}")
        for key, value in traits_data.items()
    }
    return TaxonomyDocument(specs, MappingProxyType(traits))


def parse_event(name: object, body: object) -> EventSpec:
    """One event definition: `name` and its body as written in the file."""
    event = _name(name, "events", MAX_EVENT_NAME_CHARS)
    where = f"events[{event!r}]"
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise TaxonomyError(where, "expected a mapping (family, description, tags, …)")
    unknown = set(body) - {"family", "description", "tags", "weight", "properties"}
    if unknown:
        raise TaxonomyError(where, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    family_text = body.get("family", EventFamily.TRACK.value)
    try:
        family = EventFamily(str(family_text).lower())
    except ValueError:
        known = ", ".join(f.value for f in EventFamily)
        raise TaxonomyError(f"{where}.family", f"must be one of {known}") from None
    return EventSpec(
        event=event,
        family=family,
        description=_text(body.get("description"), f"{where}.description"),
        properties=_properties(body.get("properties"), f"{where}.properties", depth=0),
        tags=_tags(body.get("tags"), f"{where}.tags"),
        weight=_weight(body.get("weight", 0), f"{where}.weight"),
    )


def _properties(data: object, where: str, depth: int) -> tuple[PropertySpec, ...]:
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise TaxonomyError(where, "expected a mapping of property name to type")
    if len(data) > MAX_PROPERTIES:
        raise TaxonomyError(where, f"more than {MAX_PROPERTIES} properties")
    return tuple(_property(name, body, where, depth) for name, body in data.items())


def _property(name: object, body: object, parent: str, depth: int) -> PropertySpec:
    key = _name(name, parent, MAX_PROPERTY_NAME_CHARS)
    where = f"{parent}.{key}"
    if isinstance(body, str):
        return PropertySpec(key, _type(body, where))
    if not isinstance(body, Mapping):
        raise TaxonomyError(where, "expected a type name or a mapping with 'type'")
    unknown = set(body) - {"type", "required", "enum", "description", "items"}
    if unknown:
        raise TaxonomyError(where, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    kind = _type(body.get("type"), f"{where}.type")
    required = body.get("required", False)
    if not isinstance(required, bool):
        raise TaxonomyError(f"{where}.required", "must be true or false")
    enum = body.get("enum") or []
    if not isinstance(enum, list) or not all(isinstance(v, str | int) for v in enum):
        raise TaxonomyError(f"{where}.enum", "must be a list of strings")
    if len(enum) > MAX_ENUM_VALUES:
        raise TaxonomyError(f"{where}.enum", f"more than {MAX_ENUM_VALUES} values")
    items: tuple[PropertySpec, ...] = ()
    if body.get("items") is not None:
        if kind not in (PropertyType.ARRAY, PropertyType.OBJECT):
            raise TaxonomyError(f"{where}.items", "only an array or an object has items")
        if depth + 1 >= MAX_ITEM_DEPTH:
            raise TaxonomyError(f"{where}.items", f"nested deeper than {MAX_ITEM_DEPTH} levels")
        items = _properties(body["items"], f"{where}.items", depth + 1)
    return PropertySpec(
        name=key,
        type=kind,
        required=required,
        enum_values=tuple(str(v) for v in enum),
        description=_text(body.get("description"), f"{where}.description"),
        items=items,
    )


def _type(value: object, where: str) -> PropertyType:
    if not isinstance(value, str):
        raise TaxonomyError(where, "expected a property type name")
    try:
        return PropertyType(value.strip().lower().removeprefix("property_type_"))
    except ValueError:
        known = ", ".join(t.value for t in PropertyType)
        raise TaxonomyError(where, f"unknown type {value!r}; expected one of {known}") from None


def _name(value: object, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(where, f"name {value!r} must be a non-empty string")
    if value != value.strip():
        raise TaxonomyError(where, f"name {value!r} has leading or trailing spaces")
    if len(value) > limit:
        raise TaxonomyError(where, f"name {value[:40]!r}… is longer than {limit} characters")
    return value


def _text(value: object, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TaxonomyError(where, "must be a string")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise TaxonomyError(where, f"longer than {MAX_DESCRIPTION_CHARS} characters")
    return value.strip()


def _tags(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise TaxonomyError(where, "must be a list of non-empty strings")
    if len(value) > MAX_TAGS:
        raise TaxonomyError(where, f"more than {MAX_TAGS} tags")
    if any(len(t) > MAX_TAG_CHARS for t in value):
        raise TaxonomyError(where, f"a tag is longer than {MAX_TAG_CHARS} characters")
    return tuple(dict.fromkeys(t.strip() for t in value))


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaxonomyError(where, "must be a finite number")
    return float(value)


def default_taxonomy() -> TaxonomyDocument:
    """The shipped e-commerce and email taxonomy (`default.yaml`)."""
    text = resources.files("mailwright.taxonomy").joinpath("default.yaml").read_text("utf-8")
    return load_taxonomy(text)
