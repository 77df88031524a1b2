"""What the checker checks a rule against: the event taxonomy, the trait schema, the limits."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class ValueType(enum.Enum):
    """The kinds of value the rule language tells apart."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    LIST = "list"
    OBJECT = "object"


# The ingest taxonomy's property types (mailwright.ingest.v1.PropertyType) and plain names.
_TYPE_NAMES = {
    "string": ValueType.STRING,
    "currency": ValueType.STRING,
    "country": ValueType.STRING,
    "email": ValueType.STRING,
    "phone": ValueType.STRING,
    "url": ValueType.STRING,
    "number": ValueType.NUMBER,
    "integer": ValueType.NUMBER,
    "money": ValueType.NUMBER,
    "boolean": ValueType.BOOLEAN,
    "timestamp": ValueType.DATE,
    "date": ValueType.DATE,
    "array": ValueType.LIST,
    "list": ValueType.LIST,
    "object": ValueType.OBJECT,
}


def value_type(name: str | ValueType) -> ValueType:
    """A ValueType from a type name: ``"money"``, ``"PROPERTY_TYPE_TIMESTAMP"``, ``"date"``…"""
    if isinstance(name, ValueType):
        return name
    key = name.lower().removeprefix("property_type_")
    if key not in _TYPE_NAMES:
        known = ", ".join(sorted(_TYPE_NAMES))
        raise ValueError(f"unknown value type {name!r}; expected one of {known}")
    return _TYPE_NAMES[key]


@dataclass(frozen=True)
class Taxonomy:
    """Event names and the types of their properties.

    ``allow_unplanned``: the workspace accepts events (and properties) outside the taxonomy,
    so an unknown one is a warning, not an error.
    """

    events: Mapping[str, Mapping[str, ValueType]]
    allow_unplanned: bool = False

    @classmethod
    def from_mapping(
        cls, events: Mapping[str, Mapping[str, str | ValueType]], allow_unplanned: bool = False
    ) -> Taxonomy:
        """From ``{"Order Completed": {"revenue": "money", "currency": "currency"}}``."""
        typed = {
            name: MappingProxyType({p: value_type(t) for p, t in props.items()})
            for name, props in events.items()
        }
        return cls(MappingProxyType(typed), allow_unplanned)


@dataclass(frozen=True)
class TraitSchema:
    """Trait keys (profile, computed and predictive traits) and their types.

    ``allow_undeclared``: traits are open-ended in this workspace, so an unknown key is a
    warning, not an error.
    """

    traits: Mapping[str, ValueType]
    allow_undeclared: bool = False

    @classmethod
    def from_mapping(
        cls, traits: Mapping[str, str | ValueType], allow_undeclared: bool = False
    ) -> TraitSchema:
        """From ``{"country": "country", "clv_12m": "number", "signup_date": "timestamp"}``."""
        typed = {key: value_type(t) for key, t in traits.items()}
        return cls(MappingProxyType(typed), allow_undeclared)


@dataclass(frozen=True)
class Limits:
    """How big a rule may be. The defaults suit the segment service."""

    max_depth: int = 10
    """Levels of the tree: ``a and (b or not c)`` is 4 deep."""
    max_conditions: int = 100
    """Leaves of the tree (the width)."""
    max_filters: int = 10
    """Property filters on one event step."""
    max_list_values: int = 100
    """Values in one ``in [...]`` list."""
