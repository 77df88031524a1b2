"""Segment definitions in YAML, and the library of case-study segments shipped with them.

The format (``segments.yaml`` beside this module is an example)::

    version: 1
    segments:
      - id: loyal-buyers            # lower-case letters, digits and dashes
        name: Loyal Buyers
        description: ...            # optional
        rule: >-
          event "Order Completed" count >= 3 in last 30 days
          and opened or clicked at least 3 of last 5 emails

``load_definitions`` reads and parses it; problems raise :class:`DefinitionError` naming
the field (``segments[2].rule``) and, for rule text, the line and column in the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from mailwright.rules import ast
from mailwright.rules.errors import RuleError, RuleSyntaxError
from mailwright.rules.grammar import parse
from mailwright.rules.schema import Taxonomy, TraitSchema
from mailwright.taxonomy import default_taxonomy

MAX_DEFINITIONS_SIZE = 1_000_000
SEGMENT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class DefinitionError(RuleError, ValueError):
    """A segment definition file is malformed; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class SegmentDefinition:
    id: str
    name: str
    description: str
    text: str
    """The rule as written in the file."""
    rule: ast.Rule


def load_definitions(text: str) -> tuple[SegmentDefinition, ...]:
    """The segments of a YAML definition file, rules parsed; raises DefinitionError."""
    if len(text) > MAX_DEFINITIONS_SIZE:
        raise DefinitionError("", f"file is larger than {MAX_DEFINITIONS_SIZE} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError("", f"not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("segments"), list):
        raise DefinitionError("segments", "expected a mapping with a list under 'segments'")
    if data.get("version", 1) != 1:
        raise DefinitionError("version", "only version 1 is understood")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(data["segments"]):
        definition = _definition(item, f"segments[{i}]")
        if definition.id in seen:
            raise DefinitionError(f"segments[{i}].id", f'"{definition.id}" is defined twice')
        seen.add(definition.id)
        out.append(definition)
    return tuple(out)


def _definition(item: Any, where: str) -> SegmentDefinition:
    if not isinstance(item, Mapping):
        raise DefinitionError(where, "expected a mapping with id, name and rule")
    unknown = set(item) - {"id", "name", "description", "rule"}
    if unknown:
        raise DefinitionError(where, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    segment_id = _string(item, "id", where)
    if not SEGMENT_ID.fullmatch(segment_id):
        raise DefinitionError(
            f"{where}.id", "use 1 to 63 lower-case letters, digits and dashes, not at the ends"
        )
    name = _string(item, "name", where)
    description = _string(item, "description", where, required=False)
    text = _string(item, "rule", where, limit=100_000)
    try:
        rule = parse(text)
    except RuleSyntaxError as exc:
        raise DefinitionError(f"{where}.rule", str(exc)) from None
    return SegmentDefinition(segment_id, name, description, text, rule)


def _string(
    item: Mapping[str, Any], key: str, where: str, required: bool = True, limit: int = 2000
) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{where}.{key}", "expected a non-empty string")
    if len(value) > limit:
        raise DefinitionError(f"{where}.{key}", f"longer than {limit} characters")
    return value.strip()


def _resource(name: str) -> str:
    return resources.files("mailwright.rules.library").joinpath(name).read_text("utf-8")


def builtin_segments() -> tuple[SegmentDefinition, ...]:
    """The shipped case-study segments (``segments.yaml``)."""
    return load_definitions(_resource("segments.yaml"))


def builtin_taxonomy() -> tuple[Taxonomy, TraitSchema]:
    """The events and traits the shipped segments refer to: the default taxonomy every
    workspace starts with (``mailwright/taxonomy/default.yaml``, shared with ingest)."""
    document = default_taxonomy()
    events = {
        spec.event: {prop.name: prop.type.value for prop in spec.properties}
        for spec in document.events
    }
    traits = {key: kind.value for key, kind in document.traits.items()}
    return Taxonomy.from_mapping(events), TraitSchema.from_mapping(traits)
