"""Free-form values (properties, traits, context) between protobuf and Python, with limits.

An event's properties arrive as a `google.protobuf.Struct` (gRPC) or as parsed JSON
(HTTP). Both are read into plain Python values by one walk that also enforces the limits
of one event — nesting depth, number of keys and items, key and string lengths — so an
attacker's payload is measured before anything else looks at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from mailwright.errors import FieldViolation

MAX_KEY_CHARS = 255
_EXACT = float(2**53)
_LARGEST = 2**63


@dataclass(frozen=True)
class Limits:
    """How big the free-form values of one event may be."""

    max_depth: int = 6
    max_entries: int = 500
    max_string_chars: int = 8192


class Budget:
    """What is left of one event's limits while its values are walked."""

    __slots__ = ("entries", "limits", "problems")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.entries = limits.max_entries
        self.problems: list[FieldViolation] = []

    def fail(self, field: str, description: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(FieldViolation(field, description))

    def spend(self, count: int, field: str) -> bool:
        self.entries -= count
        if self.entries < 0:
            self.fail(
                field,
                f"the event has more than {self.limits.max_entries} properties, traits and"
                " list items together",
            )
            return False
        return True


def struct_to_python(struct: struct_pb2.Struct, where: str, budget: Budget) -> dict[str, Any]:
    """The Struct as a dict, within the budget (violations go to `budget.problems`)."""
    return _struct(struct, where, budget, 1)


def _struct(struct: struct_pb2.Struct, where: str, budget: Budget, depth: int) -> dict[str, Any]:
    fields = struct.fields
    if not budget.spend(len(fields), where):
        return {}
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if len(key) > MAX_KEY_CHARS:
            budget.fail(f"{where}.{key[:40]}…", f"key longer than {MAX_KEY_CHARS} characters")
            continue
        out[key] = _value(value, f"{where}.{key}", budget, depth)
    return out


def _value(value: struct_pb2.Value, where: str, budget: Budget, depth: int) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        if len(text) > budget.limits.max_string_chars:
            budget.fail(where, f"longer than {budget.limits.max_string_chars} characters")
        return text
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            budget.fail(where, "must be a finite number")
            return None
        return int(number) if number.is_integer() and abs(number) <= _EXACT else number
    if kind == "bool_value":
        return value.bool_value
    if kind in ("struct_value", "list_value"):
        if depth >= budget.limits.max_depth:
            budget.fail(where, f"nested deeper than {budget.limits.max_depth} levels")
            return None
        if kind == "struct_value":
            return _struct(value.struct_value, where, budget, depth + 1)
        items = value.list_value.values
        if not budget.spend(len(items), where):
            return []
        return [_value(item, f"{where}[{i}]", budget, depth + 1) for i, item in enumerate(items)]
    return None


def check_python(value: dict[str, Any], where: str, budget: Budget) -> None:
    """Measure parsed JSON against the budget (violations go to `budget.problems`)."""
    _check(value, where, budget, 1)


def _check(value: Any, where: str, budget: Budget, depth: int) -> None:
    if isinstance(value, str):
        if len(value) > budget.limits.max_string_chars:
            budget.fail(where, f"longer than {budget.limits.max_string_chars} characters")
        return
    if isinstance(value, float) and not math.isfinite(value):
        budget.fail(where, "must be a finite number")
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST:
        budget.fail(where, "is too large a number")
        return
    if not isinstance(value, dict | list):
        return
    if depth > budget.limits.max_depth:
        budget.fail(where, f"nested deeper than {budget.limits.max_depth} levels")
        return
    if not budget.spend(len(value), where):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if len(key) > MAX_KEY_CHARS:
                budget.fail(f"{where}.{key[:40]}…", f"key longer than {MAX_KEY_CHARS} characters")
                continue
            _check(item, f"{where}.{key}", budget, depth + 1)
    else:
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", budget, depth + 1)


def python_to_struct(values: dict[str, Any], struct: struct_pb2.Struct) -> None:
    """Replace the Struct's content with `values` (JSON-like: str, numbers, bool, None,
    dicts and lists)."""
    struct.Clear()
    struct.update(values)


def update_struct(struct: struct_pb2.Struct, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Write into the Struct only the top-level keys whose values `after` replaced."""
    for key, value in after.items():
        if before.get(key) is not value:
            struct[key] = value
