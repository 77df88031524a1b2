"""Event specs: which events a condition counts, materialised by the projection.

A rule's event conditions name an event and property filters (`where currency = "EUR"`),
sometimes a property to aggregate (`sum(revenue)`) or to pair on (`per product_id`). The
projection does not evaluate filters in SQL: for every *spec* — event, filters, measured
property, pairing property — it records which events match (a *hit*: the instant, the
measured number, the pairing key) and keeps day buckets of the hits (count, and the count,
sum, minimum and maximum of the measured numbers). Filters are applied once, in Python, by
the SDK's `filters_match`, so every evaluator gives them exactly the reference meaning.

Every event name has an *implicit* spec (no filters, nothing measured), kept from the first
event of that name on; the specs a rule needs beyond those are created when the rule is
saved or previewed and filled from the projection's event log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from mailwright.rules import ast, tree
from mailwright.rules.grammar import parse_filters
from mailwright.rules.printer import filters_text
from mailwright.rules.reference import as_number, filters_match
from mailwright_segment.values import Value, group_text


@dataclass(frozen=True)
class Spec:
    event: str
    filters: tuple[ast.PropertyFilter, ...] = ()
    measure: str | None = None
    per: str | None = None

    @cached_property
    def filter_text(self) -> str:
        return filters_text(self.filters)

    @cached_property
    def id(self) -> str:
        """A stable id of the spec's content (the same spec, the same id)."""
        canonical = json.dumps(
            [self.event, self.filter_text, self.measure, self.per], ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    @property
    def implicit(self) -> bool:
        return not self.filters and self.measure is None and self.per is None

    def matches(self, name: str, properties: Mapping[str, Value]) -> bool:
        return name == self.event and filters_match(properties, self.filters)

    def hit(self, properties: Mapping[str, Value]) -> tuple[Decimal | None, str | None]:
        """The measured number and the pairing key of a matching event."""
        number = as_number(properties.get(self.measure)) if self.measure else None
        group = group_text(properties.get(self.per)) if self.per else None
        return number, group

    @classmethod
    def stored(cls, event: str, filters: str, measure: str | None, per: str | None) -> Spec:
        """A spec as the store keeps it (filters in their text form)."""
        return cls(event, parse_filters(filters) if filters else (), measure, per)


def implicit(event: str) -> Spec:
    return Spec(event)


def count_spec(node: ast.EventCount | ast.DidNotPerform) -> Spec:
    return Spec(node.event, node.filters)


def aggregate_spec(node: ast.EventAggregate) -> Spec:
    return Spec(node.event, node.filters, measure=node.property)


def sequence_specs(node: ast.Sequence) -> tuple[Spec, Spec]:
    return (
        Spec(node.first.event, node.first.filters, per=node.per),
        Spec(node.then.event, node.then.filters, per=node.per),
    )


def specs_of(rule: ast.Rule) -> list[Spec]:
    """Every spec the rule's event conditions read, without repeats."""
    found: dict[str, Spec] = {}
    for node in tree.conditions(rule):
        for spec in node_specs(node):
            found.setdefault(spec.id, spec)
    return list(found.values())


def node_specs(node: ast.Condition) -> tuple[Spec, ...]:
    if isinstance(node, ast.EventCount | ast.DidNotPerform):
        return (count_spec(node),)
    if isinstance(node, ast.EventAggregate):
        return (aggregate_spec(node),)
    if isinstance(node, ast.Sequence):
        return sequence_specs(node)
    return ()


def by_event(specs: Iterable[Spec]) -> dict[str, list[Spec]]:
    out: dict[str, list[Spec]] = {}
    for spec in specs:
        out.setdefault(spec.event, []).append(spec)
    return out
